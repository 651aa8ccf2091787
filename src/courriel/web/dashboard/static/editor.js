// courriel dashboard: the drag-and-drop email editor (GrapesJS with its MJML plugin).
// Loaded by templates/email_templates/editor.html (no inline script: CSP). The form's
// <textarea name="source"> is what is saved; the editor writes its MJML there before the
// form submits (only when the canvas was edited: an untouched template is saved as it was
// written), and the "Code view" button swaps the canvas for that textarea. A source the
// visual editor would not keep as it is opens in the code view (see lossOf).
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

  // The round-trip guard. GrapesJS rebuilds the MJML from its own model, and what it
  // does not model (rows of an <mj-raw> or <mj-table>, a self-closing tag followed by a
  // sibling, "<" inside a tag in text...) is changed or dropped without a word. So a
  // source is imported and exported once before the visual editor may save it: when the
  // two differ beyond the rewrites below (which mean the same to a mail client), the page
  // opens in the code view, which saves the source exactly as written.
  var SAME_CHARACTER = { "<": 1, ">": 1, "&": 1, "\"": 1, "'": 1 };
  var decoder = document.createElement("textarea");

  function decodeEntity(entity) {
    decoder.innerHTML = entity;
    var text = decoder.value;
    // &lt; &amp; &quot;... stay as written: decoding them would hide a real change.
    return text === entity || SAME_CHARACTER[text] ? entity : text;
  }

  function normalise(mjml) {
    return mjml
      .replace(/&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);/g, decodeEntity)
      .replace(/<(mj-[\w-]+)((?:\s[^<>]*?)?)\s*\/>/g, "<$1$2></$1>") // <mj-x/>: its own pair
      .replace(/<(br|hr|img|meta|link|input|col|wbr|area|base)\b([^<>]*?)\s*\/>/gi, "<$1$2>")
      .replace(/=\s*'([^'"]*)'/g, "=\"$1\"") // attribute quotes
      .replace(/(\sstyle="[^"]*?);\s*"/g, "$1\"") // a style's last ';'
      .replace(/<\/?tbody>/gi, "") // the parser adds it to every table
      .replace(/>\s+</g, "><")
      .replace(/\s+/g, " ")
      .trim();
  }

  // Where two normalised texts part, as a short excerpt of the first (for the notice).
  function firstDifference(a, b) {
    var i = 0;
    while (i < a.length && a.charAt(i) === b.charAt(i)) {
      i += 1;
    }
    var from = Math.max(0, i - 30);
    var tag = a.indexOf("<", from);
    from = tag >= 0 && tag <= i ? tag : from; // from a tag's start when one is near
    return (from > 0 ? "…" : "") + a.slice(from, i + 50) + (i + 50 < a.length ? "…" : "");
  }

  // null when the visual editor keeps ``mjml``; else an excerpt of where it would not.
  function lossOf(editor, mjml) {
    var before = normalise(mjml);
    var after;
    try {
      editor.setComponents(mjml);
      after = normalise(editor.getHtml());
    } catch (error) {
      return "the visual editor could not read it (" + error + ")";
    }
    return before === after ? null : firstDifference(before, after);
  }

  function start() {
    var container = document.getElementById("gjs");
    var source = document.getElementById("source");
    var codeView = document.getElementById("code-view");
    var toggle = document.getElementById("toggle-code");
    var form = document.getElementById("template-form");
    var notice = document.getElementById("roundtrip-notice");
    var where = document.getElementById("roundtrip-where");
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
      components: "",
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
    window.courrielEditor = editor; // for the browser tests and the console

    var codeMode = false;
    // The editor's export right after it read the source: while the canvas still gives
    // this, nothing was edited there and the textarea keeps the source as written.
    var baseline = null;

    function show(code) {
      codeMode = code;
      container.hidden = codeMode;
      codeView.hidden = !codeMode;
      toggle.setAttribute("aria-pressed", codeMode ? "true" : "false");
      toggle.textContent = codeMode ? "Visual editor" : "Code view";
    }

    function warn(loss) {
      if (notice) {
        where.textContent = loss;
        notice.hidden = false;
      }
    }

    // Load ``source`` into the canvas; false (and the code view) when it would not survive.
    function loadVisual(asked) {
      var loss = lossOf(editor, source.value);
      if (loss !== null) {
        warn(loss);
        var question = "The visual editor would change or drop part of this template " +
          "(near: " + loss + "). Open it there anyway? Saving from the visual editor " +
          "then stores its version.";
        if (!asked || !window.confirm(question)) {
          show(true);
          return false;
        }
      }
      baseline = editor.getHtml();
      show(false);
      return true;
    }

    function edited() {
      return baseline === null || editor.getHtml() !== baseline;
    }

    editor.on("load", function () {
      var blocks = editor.Panels.getButton("views", "open-blocks");
      if (blocks) {
        blocks.set("active", true);
      }
      loadVisual(false);
      container.setAttribute("data-checked", codeMode ? "code" : "visual");
    });

    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      if (codeMode) {
        if (!loadVisual(true)) {
          source.focus();
          return;
        }
      } else {
        if (edited()) {
          source.value = editor.getHtml();
        }
        show(true);
      }
      (codeMode ? source : container).focus();
    });
    form.addEventListener("submit", function () {
      if (!codeMode && edited()) {
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
