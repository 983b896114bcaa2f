// The RQ dashboard posts with jQuery: send the console's CSRF token with every request it makes.
(function ($) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) {
    $.ajaxSetup({ headers: { 'X-CSRFToken': meta.getAttribute('content') } });
  }
})(jQuery);
