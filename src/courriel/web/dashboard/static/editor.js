// courriel dashboard: the drag-and-drop email editor (GrapesJS with its MJML plugin).
// Loaded by templates/email_templates/editor.html (no inline script: CSP). The form's
// <textarea name="source"> is what is saved; the editor writes its MJML there before the
// form submits, and the "Code view" button swaps the canvas for that textarea.
(function () {
  "use strict";

  // The "Recommended products" block: a section whose text loops over the contact's
  // recommendations (docs/recommendations.md). Tags stay inside <mj-text>, where the
  // template compiler keeps them through MJML (docs/templates.md).
  var PRODUCTS = [
    '<mj-section css-class="recommended-products">',
    '  <mj-column>',
    '    <mj-text>',
    '      <h2>Picked for you</h2>',
    '      {% for p in recommendations("best_sellers", 3) %}',
    '      <p><a href="{{ p.url }}"><img src="{{ p.image_url }}" alt="{{ p.title }}" width="160"></a><br>',
    '      <a href="{{ p.url }}">{{ p.title }}</a> · {{ p.price_minor | money(p.currency) }}</p>',
    '      {% endfor %}',
    '    </mj-text>',
    '  </mj-column>',
    '</mj-section>'
  ].join("\n");

  // Offline: no placeholder service, no Google Fonts (the server works without internet).
  var PLACEHOLDER = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(
    '<svg xmlns="http://www.w3.org/2000/svg" width="350" height="200">' +
    '<rect width="100%" height="100%" fill="#dde1e7"/>' +
    '<text x="50%" y="50%" font-family="sans-serif" font-size="20" fill="#5b6475" ' +
    'text-anchor="middle" dominant-baseline="middle">Image</text></svg>');

  var BLOCKS = [
    "mj-1-column", "mj-2-columns", "mj-3-columns", "mj-text", "mj-image", "mj-button",
    "mj-divider", "mj-social-group", "mj-spacer"
  ];

  function start() {
    var container = document.getElementById("gjs");
    var source = document.getElementById("source");
    var codeView = document.getElementById("code-view");
    var toggle = document.getElementById("toggle-code");
    var form = document.getElementById("template-form");
    var plugin = window["grapesjs-mjml"];
    if (!container || !source || !window.grapesjs || !plugin) {
      return; // the code view alone still works
    }
    if (plugin.default) {
      plugin = plugin.default;
    }
    container.hidden = false;
    codeView.hidden = true;
    var editor = window.grapesjs.init({
      container: container,
      height: "640px",
      fromElement: false,
      storageManager: false,
      telemetry: false, // never call home
      cssIcons: "", // no Font Awesome from a CDN
      components: source.value,
      plugins: [function (ed) {
        plugin(ed, { blocks: BLOCKS, fonts: {}, imagePlaceholderSrc: PLACEHOLDER });
      }]
    });
    editor.BlockManager.add("courriel-products", {
      label: "Recommended products",
      category: "Shop",
      media: '<svg viewBox="0 0 24 24" width="48" height="48" aria-hidden="true"><path fill="currentColor" ' +
        'd="M7 4h10l1 4H6l1-4zm-2 5h14v11H5V9zm3 2v3h3v-3H8zm5 0v3h3v-3h-3z"/></svg>',
      content: PRODUCTS
    });
    editor.on("load", function () {
      var blocks = editor.Panels.getButton("views", "open-blocks");
      if (blocks) {
        blocks.set("active", true);
      }
    });
    window.courrielEditor = editor; // for the browser tests and the console

    var codeMode = false;
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      if (codeMode) {
        editor.setComponents(source.value);
      } else {
        source.value = editor.getHtml();
      }
      codeMode = !codeMode;
      container.hidden = codeMode;
      codeView.hidden = !codeMode;
      toggle.setAttribute("aria-pressed", codeMode ? "true" : "false");
      toggle.textContent = codeMode ? "Visual editor" : "Code view";
      (codeMode ? source : container).focus();
    });
    form.addEventListener("submit", function () {
      if (!codeMode) {
        source.value = editor.getHtml();
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
