// ipywidgets' HTML manager typesets widget labels with MathJax 2's API (MathJax.Hub.Queue), and throws
// where MathJax is defined without it; the site loads MathJax 3. Bridge the two: keep the page's MathJax
// 3 configuration, and give it a Hub.Queue that typesets with MathJax 3 once MathJax is ready (and
// does nothing before). Loaded after the configuration and before MathJax itself, which is deferred.
(function () {
  const config = window.MathJax || {};
  const startup = config.startup || {};
  const ready = startup.ready;
  startup.ready = function () {
    if (ready) ready(); else MathJax.startup.defaultReady();
    MathJax.Hub = {Queue: (job) => MathJax.typesetPromise([job[2]]).catch(() => {})};
  };
  config.startup = startup;
  config.Hub = {Queue: function () {}};
  window.MathJax = config;
})();
