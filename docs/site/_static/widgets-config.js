// Tell RequireJS where the ipywidgets HTML manager lives on this site. The manager finds its own
// files (fonts) next to the module's URL; without this it looks for them next to the page.
require.config({
  paths: {
    "@jupyter-widgets/html-manager/dist": new URL("jupyter-widgets-html-manager/dist", document.currentScript.src).href,
  },
});
