// Bulk actions of the console's lists ("With selected" menu): Flask-Admin runs them from
// inline onclick handlers, which the CSP refuses; templates/admin/actions.html marks each
// item with data-action instead.
$(document).on('click', 'a.dropdown-item[data-action]', function (event) {
  event.preventDefault();
  return modelActions.execute($(this).data('action'));
});
