"""The order timeline (``/console/timeline/?q=…``, the top bar's search box) and the shop page.

The timeline tells one item's whole story in time order; a shop id or ``acct_…`` opens the
shop page instead. The services gather (``services/timeline``); this module only renders.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, redirect, request, url_for
from flask_admin import BaseView, expose
from flask_login import current_user

from webapp.errors import ConnectorError
from webapp.extensions import db
from webapp.services.access import audit
from webapp.services.ledger.minor_units import format_amount
from webapp.services.onboarding import links as onboarding_links
from webapp.services.timeline import gather, shop
from webapp.services.timeline.rules import assemble, kyc_summary, parse_query, row_title
from webapp.views.auth import SecuredMixin
from webapp.views.console_columns import onboarding_state, stripe_url
from webapp.views.console_rules import link_kind

log = logging.getLogger(__name__)


class TimelineView(SecuredMixin, BaseView):
    """One search box, one story."""

    def is_visible(self) -> bool:
        return False  # reached from the top bar's search box

    @expose("/")
    def index(self) -> Any:
        query = parse_query(request.args.get("q", ""))
        if query is None:
            return self.render("admin/timeline/index.html", query="", entries=None, subject=None)
        found_shop = gather.find_shop(query)
        if found_shop is not None:
            return redirect(url_for("shop.page", shop_id=found_shop.mirakl_shop_id))
        subject = gather.find_subject(query)
        entries = [] if subject.is_empty() else assemble(gather.gather(subject))
        return self.render(
            "admin/timeline/index.html", query=query.value, entries=entries, subject=subject,
            stripe_url=stripe_url,
        )  # fmt: skip


class ShopPageView(SecuredMixin, BaseView):
    """A shop: onboarding/KYC state and history, its link, its money in and out."""

    def is_visible(self) -> bool:
        return False  # reached from the Shops list and the search box

    @expose("/")
    def index(self) -> Any:
        return redirect(url_for("shops.index_view"))

    @expose("/<int:shop_id>")
    def page(self, shop_id: int) -> Any:
        try:
            mapping = shop.get_shop(shop_id)
        except LookupError as exc:
            abort(404, str(exc))
        return self.render(
            "admin/timeline/shop.html", shop=mapping, state=onboarding_state(mapping),
            link_kind=link_kind(mapping.onboarding_url), totals=shop.money_totals(shop_id),
            money=shop.recent_money(shop_id), kyc=shop.kyc_history(mapping),
            actions=shop.shop_actions(mapping), kyc_summary=kyc_summary,
            format_amount=format_amount, stripe_url=stripe_url, row_title=row_title,
        )  # fmt: skip

    @expose("/<int:shop_id>/new-link", methods=["POST"])
    def new_link(self, shop_id: int) -> Any:
        try:
            mapping = shop.get_shop(shop_id)
        except LookupError as exc:
            abort(404, str(exc))
        try:
            onboarding_links.refresh_onboarding_link(mapping.id)
            outcome = "new link made"
            db.session.commit()
            flash(f"Shop {shop_id}: new link made.", "success")
        except ConnectorError as exc:
            db.session.rollback()
            outcome = f"failed: {exc}"
            flash(f"Shop {shop_id}: no new link: {exc}", "error")
        audit.record_now("new_link", actor=current_user.email, target_type="shop",
                         target_id=mapping.id, mirakl_id=f"shop {shop_id}",
                         outcome=outcome)  # fmt: skip
        return redirect(url_for(".page", shop_id=shop_id))
