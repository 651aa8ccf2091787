// courriel dashboard: the segment builder (templates/segments/builder.html).
//
// The condition tree (docs/segments.md) lives in `tree`; the form's hidden #definition
// field always holds it as JSON, the #definition-json textarea shows it indented (and
// edits to it replace the tree when they parse). Every change asks /segments/preview
// (a GET, debounced 400 ms, the previous request aborted) for the live count and the
// first members; an error from the parser names the path of the value at fault and the
// builder outlines the condition at that path.
(function () {
  "use strict";
  const root = document.getElementById("builder");
  if (!root) {
    return;
  }
  const hidden = document.getElementById("definition");
  const textarea = document.getElementById("definition-json");
  const jsonError = document.getElementById("json-error");
  const preview = document.getElementById("preview");
  const form = document.getElementById("segment-form");
  const lists = JSON.parse(root.getAttribute("data-lists") || "[]");
  const maxUrl = 8000;

  const TEXT_OPS = [["eq", "is"], ["neq", "is not"], ["contains", "contains"],
    ["starts_with", "starts with"], ["ends_with", "ends with"], ["is_set", "is set"],
    ["is_not_set", "is not set"]];
  const NUMBER_OPS = [["eq", "equals"], ["neq", "is not"], ["gt", "more than"],
    ["gte", "at least"], ["lt", "less than"], ["lte", "at most"]];
  const DATE_OPS = [["before", "before (date)"], ["after", "after (date)"],
    ["within_days", "in the last … days"], ["more_than_days_ago", "more than … days ago"]];
  const PRESENCE_OPS = [["is_set", "is set"], ["is_not_set", "is not set"]];
  const EVENT_OPS = [["at_least", "at least"], ["at_most", "at most"], ["exactly", "exactly"],
    ["zero", "zero times"]];
  const GROUPS = [["all", "All of these are true"], ["any", "Any of these is true"],
    ["not", "This is NOT true"]];
  const EVENT_NAMES = ["Active on Site", "Viewed Product", "Added to Cart", "Started Checkout",
    "Placed Order", "Ordered Product", "Fulfilled Order", "Cancelled Order", "Refunded Order",
    "Opened Email", "Clicked Email"];
  const KINDS = {
    profile: ["Profile field", () => ({kind: "profile", field: "email", op: "contains", value: ""})],
    attribute: ["Custom attribute", () => ({kind: "attribute", key: "", op: "eq", value: ""})],
    location: ["Location", () => ({kind: "location", field: "country", op: "in", value: []})],
    consent: ["Consent", () => ({kind: "consent", channel: "email", status: ["subscribed"]})],
    list: ["List member", () => ({kind: "list", list: lists.length ? lists[0].id : "",
      status: ["subscribed"]})],
    tag: ["Tag", () => ({kind: "tag", tag: "", present: true})],
    order: ["Orders", () => ({kind: "order", metric: "count", op: "gte", value: 1})],
    bought: ["Bought product or category", () => ({kind: "bought", category: ""})],
    event: ["Event", () => ({kind: "event", name: "Viewed Product", op: "at_least", count: 1,
      within_days: 30})],
    engagement: ["Email engagement", () => ({kind: "engagement", action: "opened", count: 1,
      within_days: 30})],
  };
  const GROUP_KINDS = ["all", "any", "not"];

  let tree = null;
  let unreadable = "";
  try {
    tree = JSON.parse(hidden.value);
  } catch (error) {
    unreadable = "Not valid JSON: " + error.message;
  }
  if (!tree || typeof tree !== "object" || Array.isArray(tree)) {
    tree = {kind: "all", conditions: []};
  }

  // -- small DOM helpers ----------------------------------------------------------------

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (value === false || value === null || value === undefined) {
        return;
      }
      if (key === "text") {
        node.textContent = value;
      } else if (key.startsWith("on")) {
        node.addEventListener(key.slice(2), value);
      } else {
        node.setAttribute(key, value === true ? "" : value);
      }
    });
    (children || []).forEach((child) => child && node.appendChild(child));
    return node;
  }

  function idFor(path, name) {
    return "seg-" + (path || "root").replace(/\//g, "-") + "-" + name;
  }

  function join(path, key) {
    return path ? path + "/" + key : String(key);
  }

  // Replace a node's content in place, so that its parent keeps the same object.
  function replaceNode(node, fresh) {
    Object.keys(node).forEach((key) => delete node[key]);
    Object.assign(node, fresh);
  }

  function field(label, control, extraClass) {
    return el("div", {class: "field" + (extraClass ? " " + extraClass : "")},
      [el("label", {for: control.id, text: label}), control]);
  }

  // A <select> bound to node[key]; `rebuild` re-renders the builder after a change.
  function select(node, key, path, label, options, after) {
    const control = el("select", {id: idFor(path, key)});
    options.forEach(([value, text]) => {
      control.appendChild(el("option", {value: String(value), text: text}));
    });
    control.value = String(node[key]);
    if (!options.some(([value]) => String(value) === String(node[key]))) {
      control.selectedIndex = 0; // an absent key shows its default, the first choice
    }
    control.addEventListener("change", () => {
      const chosen = options.find(([value]) => String(value) === control.value);
      node[key] = chosen ? chosen[0] : control.value;
      if (after) {
        after();
      }
      rebuild();
    });
    return field(label, control);
  }

  // An <input> bound to node[key]. kind: "text" | "number" | "days" | "date" | "list".
  function input(node, key, path, label, kind, opts) {
    const options = opts || {};
    const type = kind === "days" || kind === "number" ? "number" : kind === "date" ? "date" : "text";
    const control = el("input", {id: idFor(path, key), type: type, list: options.list,
      min: kind === "days" ? 1 : options.min, max: kind === "days" ? 36500 : null,
      step: kind === "days" ? 1 : options.step, placeholder: options.placeholder,
      inputmode: type === "number" ? "decimal" : null});
    const current = node[key];
    if (kind === "list") {
      control.value = Array.isArray(current) ? current.join(", ") : "";
    } else if (kind === "date") {
      control.value = typeof current === "string" ? current.slice(0, 10) : "";
    } else {
      control.value = current === undefined || current === null ? "" : String(current);
    }
    control.addEventListener("input", () => {
      const raw = control.value;
      if (kind === "list") {
        node[key] = raw.split(",").map((part) => part.trim()).filter((part) => part !== "");
      } else if (type === "number") {
        if (raw.trim() === "") {
          if (options.optional) {
            delete node[key];
          } else {
            node[key] = null;
          }
        } else {
          node[key] = Number(raw);
        }
      } else {
        node[key] = raw;
      }
      sync();
    });
    return field(label, control, kind === "days" || type === "number" ? "short" : "");
  }

  function checkboxes(node, key, path, legend, choices) {
    const box = el("fieldset", {class: "checks"}, [el("legend", {text: legend})]);
    const chosen = Array.isArray(node[key]) ? node[key] : node[key] ? [node[key]] : [];
    choices.forEach((choice) => {
      const id = idFor(path, key + "-" + choice);
      const control = el("input", {type: "checkbox", id: id, value: choice,
        checked: chosen.includes(choice)});
      control.addEventListener("change", () => {
        node[key] = choices.filter((c) => document.getElementById(idFor(path, key + "-" + c)).checked);
        sync();
      });
      box.appendChild(el("span", {class: "check"}, [control, el("label", {for: id, text: choice})]));
    });
    return box;
  }

  function withinDays(node, path) {
    return input(node, "within_days", path, "In the last … days", "days",
      {optional: true, placeholder: "all time"});
  }

  // -- value of an operator -----------------------------------------------------------

  function opValue(node, path, ops) {
    // The value input that node.op needs (text, date, days, or none).
    if (node.op === "is_set" || node.op === "is_not_set") {
      return null;
    }
    if (node.op === "before" || node.op === "after") {
      return input(node, "value", path, "Date", "date");
    }
    if (node.op === "within_days" || node.op === "more_than_days_ago") {
      return input(node, "value", path, "Days", "days");
    }
    if (node.op === "in" || node.op === "not_in") {
      return input(node, "value", path, "Values (comma-separated)", "list",
        {placeholder: "FR, BE"});
    }
    return input(node, "value", path, "Value", ops === NUMBER_OPS ? "number" : "text",
      {step: "any"});
  }

  // After an operator change, give the value the type the new operator takes.
  function fixValue(node) {
    const op = node.op;
    const value = node.value;
    if (op === "is_set" || op === "is_not_set") {
      delete node.value;
    } else if (op === "in" || op === "not_in") {
      node.value = Array.isArray(value) ? value : typeof value === "string" && value ? [value] : [];
    } else if (op === "within_days" || op === "more_than_days_ago") {
      node.value = typeof value === "number" ? value : 30;
    } else if (op === "before" || op === "after") {
      node.value = typeof value === "string" ? value : "";
    } else if (Array.isArray(value)) {
      node.value = value.join(", ");
    } else if (value === undefined || value === null) {
      node.value = "";
    }
  }

  // Attribute and event-property comparison: the value's JSON type picks the operators.
  function jsonType(node) {
    if (node.op === "is_set" || node.op === "is_not_set") {
      return "presence";
    }
    if (typeof node.value === "boolean") {
      return "boolean";
    }
    return typeof node.value === "number" ? "number" : "text";
  }

  function jsonCompare(node, path) {
    const parts = [];
    const state = {type: jsonType(node)};
    parts.push(select(state, "type", path, "Compared as",
      [["text", "text"], ["number", "number"], ["boolean", "yes / no"], ["presence", "present or not"]],
      () => {
        const fresh = {text: ["eq", ""], number: ["gte", 0], boolean: ["eq", true],
          presence: ["is_set", undefined]}[state.type];
        node.op = fresh[0];
        if (fresh[1] === undefined) {
          delete node.value;
        } else {
          node.value = fresh[1];
        }
      }));
    if (state.type === "presence") {
      parts.push(select(node, "op", path, "Operator", PRESENCE_OPS));
    } else if (state.type === "boolean") {
      parts.push(select(node, "op", path, "Operator", [["eq", "is"], ["neq", "is not"]]));
      parts.push(select(node, "value", path, "Value", [[true, "true"], [false, "false"]]));
    } else if (state.type === "number") {
      parts.push(select(node, "op", path, "Operator", NUMBER_OPS));
      parts.push(input(node, "value", path, "Value", "number", {step: "any"}));
    } else {
      const ops = TEXT_OPS.filter(([op]) => op !== "is_set" && op !== "is_not_set");
      parts.push(select(node, "op", path, "Operator", ops));
      parts.push(input(node, "value", path, "Value", "text"));
    }
    return parts;
  }

  // -- one renderer per condition kind ------------------------------------------------

  const LEAVES = {
    profile(node, path) {
      const fields = ["email", "first_name", "last_name", "phone", "source", "created_at"];
      const ops = node.field === "created_at" ? [...DATE_OPS, ...PRESENCE_OPS] : TEXT_OPS;
      return [
        select(node, "field", path, "Field", fields.map((f) => [f, f.replace("_", " ")]), () => {
          const allowed = node.field === "created_at" ? [...DATE_OPS, ...PRESENCE_OPS] : TEXT_OPS;
          if (!allowed.some(([op]) => op === node.op)) {
            node.op = allowed[0][0];
            delete node.value;
          }
          fixValue(node);
        }),
        select(node, "op", path, "Operator", ops, () => fixValue(node)),
        opValue(node, path, ops),
      ];
    },
    attribute(node, path) {
      return [input(node, "key", path, "Attribute key", "text"), ...jsonCompare(node, path)];
    },
    location(node, path) {
      const ops = [...TEXT_OPS, ["in", "is one of"], ["not_in", "is not one of"]];
      const fields = ["country", "region", "city", "postal_code", "time_zone"];
      return [
        select(node, "field", path, "Field", fields.map((f) => [f, f.replace("_", " ")])),
        select(node, "op", path, "Operator", ops, () => fixValue(node)),
        opValue(node, path, ops),
      ];
    },
    consent(node, path) {
      return [
        select(node, "channel", path, "Channel", [["email", "email"], ["sms", "SMS"]]),
        checkboxes(node, "status", path, "Status is one of",
          ["subscribed", "unsubscribed", "pending", "never"]),
      ];
    },
    list(node, path) {
      let picker;
      if (lists.length) {
        const options = lists.map((item) => [item.id, item.name]);
        if (!options.some(([id]) => String(id) === String(node.list))) {
          options.push([node.list, String(node.list) + " (not found)"]);
        }
        picker = select(node, "list", path, "List", options);
      } else {
        picker = input(node, "list", path, "List name", "text");
      }
      return [picker, checkboxes(node, "status", path, "Membership is one of",
        ["subscribed", "pending", "unsubscribed"])];
    },
    tag(node, path) {
      return [
        select(node, "present", path, "Contact", [[true, "has the tag"], [false, "does not have the tag"]]),
        input(node, "tag", path, "Tag", "text"),
      ];
    },
    order(node, path) {
      const dated = node.metric === "first_order_date" || node.metric === "last_order_date";
      const metrics = [["count", "number of orders"], ["total_spent", "total spent"],
        ["average_value", "average order value"], ["first_order_date", "first order date"],
        ["last_order_date", "last order date"]];
      const parts = [select(node, "metric", path, "Metric", metrics, () => {
        const nowDated = node.metric === "first_order_date" || node.metric === "last_order_date";
        if (nowDated !== dated) {
          node.op = nowDated ? "within_days" : "gte";
          node.value = nowDated ? 30 : 1;
        }
        if (nowDated) {
          delete node.within_days;
        }
      })];
      if (dated) {
        parts.push(select(node, "op", path, "Operator", DATE_OPS, () => fixValue(node)));
        parts.push(opValue(node, path, DATE_OPS));
      } else {
        parts.push(select(node, "op", path, "Operator", NUMBER_OPS));
        parts.push(input(node, "value", path, node.metric === "count" ? "Orders" : "Amount",
          "number", {min: 0, step: node.metric === "count" ? 1 : 0.01}));
        parts.push(withinDays(node, path));
      }
      return parts;
    },
    bought(node, path) {
      const state = {by: node.product_id !== undefined ? "product_id" : "category"};
      return [
        select(node, "negate", path, "Contact", [[false, "bought"], [true, "did not buy"]]),
        select(state, "by", path, "Which", [["category", "product of category"], ["product_id", "product (id)"]],
          () => {
            delete node.product_id;
            delete node.category;
            node[state.by] = state.by === "category" ? "" : 1;
          }),
        state.by === "category"
          ? input(node, "category", path, "Category", "text")
          : input(node, "product_id", path, "Product id", "number", {min: 1, step: 1}),
        withinDays(node, path),
      ];
    },
    event(node, path) {
      const parts = [
        input(node, "name", path, "Event name", "text", {list: "seg-event-names"}),
        select(node, "op", path, "Happened", EVENT_OPS, () => {
          if (node.op === "zero") {
            delete node.count;
          } else if (node.count === undefined) {
            node.count = 1;
          }
        }),
      ];
      if (node.op !== "zero") {
        parts.push(input(node, "count", path, "Times", "number", {min: 0, step: 1}));
      }
      parts.push(withinDays(node, path));
      const filters = Array.isArray(node.filters) ? node.filters : [];
      const box = el("div", {class: "filters"});
      filters.forEach((filter, index) => {
        const where = join(path, "filters/" + index);
        box.appendChild(el("div", {class: "filter", "data-path": where}, [
          input(filter, "path", where, "Property", "text", {placeholder: "Categories or Item.Price"}),
          ...jsonCompare(filter, where),
          el("button", {type: "button", class: "link remove", text: "Remove filter",
            onclick: () => {
              filters.splice(index, 1);
              if (!filters.length) {
                delete node.filters;
              }
              rebuild();
            }}),
        ]));
      });
      box.appendChild(el("button", {type: "button", id: idFor(path, "add-filter"),
        text: "Add a property filter", disabled: filters.length >= 10,
        onclick: () => {
          node.filters = filters.concat([{path: "", op: "is_set"}]);
          rebuild();
        }}));
      parts.push(box);
      return parts;
    },
    engagement(node, path) {
      return [
        select(node, "action", path, "Contact", [["opened", "opened an email"], ["clicked", "clicked in an email"]]),
        input(node, "count", path, "At least … times", "number", {min: 1, step: 1}),
        withinDays(node, path),
      ];
    },
  };

  // -- groups and leaves --------------------------------------------------------------

  function removeButton(label, remove) {
    return el("button", {type: "button", class: "link remove", text: "Remove",
      "aria-label": label, onclick: () => {
        remove();
        rebuild();
      }});
  }

  function addControls(node, path, add) {
    const pick = el("select", {id: idFor(path, "add-kind")});
    Object.entries(KINDS).forEach(([kind, [label]]) => {
      pick.appendChild(el("option", {value: kind, text: label}));
    });
    return el("div", {class: "add"}, [
      el("label", {for: pick.id, text: "New condition"}),
      pick,
      el("button", {type: "button", id: idFor(path, "add"), text: "Add condition",
        onclick: () => {
          add(KINDS[pick.value][1]());
          rebuild();
        }}),
      el("button", {type: "button", id: idFor(path, "add-group"), text: "Add group",
        onclick: () => {
          add({kind: "any", conditions: []});
          rebuild();
        }}),
    ]);
  }

  function renderGroup(node, path, remove) {
    const kind = el("select", {id: idFor(path, "group")});
    GROUPS.forEach(([value, label]) => kind.appendChild(el("option", {value: value, text: label})));
    kind.value = node.kind;
    kind.addEventListener("change", () => {
      const children = node.kind === "not" ? (node.condition ? [node.condition] : [])
        : (node.conditions || []);
      if (kind.value === "not") {
        const only = children.length === 1 ? children[0]
          : children.length ? {kind: node.kind, conditions: children} : undefined;
        replaceNode(node, only ? {kind: "not", condition: only} : {kind: "not"});
      } else {
        replaceNode(node, {kind: kind.value, conditions: children});
      }
      rebuild();
    });
    const legend = el("legend", {}, [
      el("label", {for: kind.id, text: path ? "Group" : "Contacts where"}), kind,
      remove ? removeButton("Remove this group", remove) : null,
    ]);
    const box = el("fieldset", {class: "group", "data-path": path}, [legend]);
    if (node.kind === "not") {
      if (node.condition && typeof node.condition === "object") {
        box.appendChild(renderNode(node.condition, join(path, "condition"), () => {
          delete node.condition;
        }));
      } else {
        box.appendChild(addControls(node, path, (child) => {
          node.condition = child;
        }));
      }
      return box;
    }
    if (!Array.isArray(node.conditions)) {
      node.conditions = [];
    }
    const conditions = node.conditions;
    if (!conditions.length) {
      box.appendChild(el("p", {class: "muted", text: node.kind === "all"
        ? "No condition yet: every contact matches." : "No condition yet: nobody matches."}));
    }
    conditions.forEach((child, index) => {
      box.appendChild(renderNode(child, join(path, "conditions/" + index), () => {
        conditions.splice(index, 1);
      }));
    });
    box.appendChild(addControls(node, path, (child) => conditions.push(child)));
    return box;
  }

  function renderNode(node, path, remove) {
    if (node && GROUP_KINDS.includes(node.kind)) {
      return renderGroup(node, path, remove);
    }
    const kind = node && KINDS[node.kind] ? node.kind : null;
    const head = el("div", {class: "condition-head"}, [
      el("strong", {text: kind ? KINDS[kind][0] : "Unknown condition"}),
      remove ? removeButton("Remove this condition", remove) : null,
    ]);
    const body = kind
      ? LEAVES[kind](node, path).filter(Boolean)
      : [el("p", {class: "muted", text: "Edit this condition in the JSON view."})];
    return el("div", {class: "condition", "data-path": path}, [head, el("div", {class: "row"}, body)]);
  }

  // -- keeping the JSON, the builder and the preview in step ---------------------------

  function rebuild(fromTextarea) {
    const focused = document.activeElement ? document.activeElement.id : "";
    if (!GROUP_KINDS.includes(tree.kind)) {
      tree = {kind: "all", conditions: [tree]}; // the same contacts, and room to add more
    }
    root.replaceChildren(renderNode(tree, "", null));
    if (focused && root.querySelector("#" + CSS.escape(focused))) {
      document.getElementById(focused).focus();
    }
    sync(fromTextarea);
  }

  function sync(fromTextarea) {
    hidden.value = JSON.stringify(tree);
    if (!fromTextarea) {
      textarea.value = JSON.stringify(tree, null, 2);
      jsonError.hidden = true;
    }
    schedulePreview();
  }

  textarea.addEventListener("input", () => {
    let parsed;
    try {
      parsed = JSON.parse(textarea.value);
    } catch (error) {
      jsonError.textContent = "Not valid JSON yet: " + error.message;
      jsonError.hidden = false;
      return;
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
      jsonError.textContent = "The tree must be a JSON object with a \"kind\".";
      jsonError.hidden = false;
      return;
    }
    jsonError.hidden = true;
    tree = parsed;
    rebuild(true);
  });

  if (form) {
    form.addEventListener("submit", (event) => {
      if (!jsonError.hidden) {
        event.preventDefault();
        document.getElementById("json-view").open = true;
        textarea.focus();
      }
    });
  }

  // Outline the condition that the parser's error names (its path, or the nearest parent).
  function markError(fieldPath) {
    root.querySelectorAll(".invalid").forEach((node) => node.classList.remove("invalid"));
    if (fieldPath === null || fieldPath === undefined) {
      return;
    }
    let best = null;
    root.querySelectorAll("[data-path]").forEach((node) => {
      const path = node.getAttribute("data-path");
      const matches = path === "" || fieldPath === path || fieldPath.startsWith(path + "/");
      if (matches && (!best || path.length >= best.getAttribute("data-path").length)) {
        best = node;
      }
    });
    if (best) {
      best.classList.add("invalid");
    }
  }

  let timer = null;
  let inflight = null;

  function schedulePreview() {
    clearTimeout(timer);
    timer = setTimeout(runPreview, 400);
  }

  function showNotice(text) {
    preview.replaceChildren(el("p", {class: "notice warn", text: text}));
  }

  function runPreview() {
    const url = preview.getAttribute("data-url") + "?definition=" + encodeURIComponent(hidden.value);
    if (url.length > maxUrl) {
      showNotice("This segment is too large to count while editing: save it, then count it from the list.");
      return;
    }
    if (inflight) {
      inflight.abort();
    }
    const controller = new AbortController();
    inflight = controller;
    preview.setAttribute("aria-busy", "true");
    fetch(url, {credentials: "same-origin", signal: controller.signal,
      headers: {"HX-Request": "true"}})
      .then((response) => {
        if (response.status === 401) {
          window.location.href = response.headers.get("HX-Redirect") || "/login";
          return null;
        }
        return response.text();
      })
      .then((html) => {
        if (html === null || controller !== inflight) {
          return;
        }
        inflight = null;
        // The fragment is rendered by the server with autoescaping: no user text is HTML.
        preview.innerHTML = html;
        preview.removeAttribute("aria-busy");
        const error = preview.querySelector("[data-field]");
        markError(error ? error.getAttribute("data-field") : null);
      })
      .catch((error) => {
        if (error.name !== "AbortError") {
          preview.removeAttribute("aria-busy");
          showNotice("The count failed: " + error.message);
        }
      });
  }

  document.body.appendChild(el("datalist", {id: "seg-event-names"},
    EVENT_NAMES.map((name) => el("option", {value: name}))));
  const saveError = document.getElementById("save-error");
  rebuild(saveError !== null || unreadable !== "");
  if (unreadable) {
    jsonError.textContent = unreadable;
    jsonError.hidden = false;
    document.getElementById("json-view").open = true;
  }
  if (saveError) {
    // The error is about the definition: its field is "definition/<path in the tree>".
    const where = saveError.getAttribute("data-field") || "";
    if (where === "definition" || where.startsWith("definition/")) {
      markError(where.slice("definition/".length));
    }
  }
})();
