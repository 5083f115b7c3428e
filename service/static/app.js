/* Tasklane Support pages: checks the form exactly as the server does (the rules come from
   the server, rendered into the page), sends it without leaving the page, and watches a
   ticket's status page for replies. Customer text is only ever set with textContent.
   Without this script every page still works as a plain HTML form. */
(() => {
  "use strict";

  // ---------- the server's rules (service/forms.py, fte_core/identity.py) ----------
  function makeValidator(rules) {
    const edges = new RegExp(`^[${rules.whitespace}]+|[${rules.whitespace}]+$`, "gu");
    const email = new RegExp(rules.email_pattern, "u");
    const punctuation = new RegExp(rules.phone_punctuation, "gu");
    const digits = new RegExp(rules.phone_digits, "u");
    const length = (text) => [...text].length; // code points, as Python counts
    const strip = (text) => text.replace(edges, "");
    const say = (field, kind) => rules.messages[field][kind];

    function phoneKind(value) {
      let raw = strip(value);
      if (raw.toLowerCase().startsWith("whatsapp:")) raw = raw.slice("whatsapp:".length);
      const compact = raw.replace(punctuation, "");
      let rest;
      if (compact.startsWith("+")) rest = compact.slice(1);
      else if (compact.startsWith("00")) rest = compact.slice(2);
      else return "country";
      return digits.test(rest) && !rest.startsWith("0") ? null : "invalid";
    }

    /* {field: raw value} -> {field: message}; mirrors parse_form step by step. */
    return function validate(raw) {
      const errors = {};
      const values = {};
      for (const field of rules.fields) {
        const value = raw[field];
        if (value === undefined || value === null || value === "") continue;
        if (typeof value !== "string") { errors[field] = say(field, "text"); continue; }
        values[field] = strip(value);
      }
      for (const [field, [low, high]] of Object.entries(rules.limits)) {
        if (field in errors) continue;
        const text = values[field] || "";
        if (!text) errors[field] = say(field, "required");
        else if (length(text) < low) errors[field] = say(field, "short");
        else if (length(text) > high) errors[field] = say(field, "long");
      }
      if ("email" in values && !("email" in errors)) {
        const address = strip(values.email).toLowerCase();
        if (length(address) > rules.email_max || !email.test(address)) {
          errors.email = say("email", "invalid");
        }
      }
      if ("phone" in values && !("phone" in errors)) {
        const kind = phoneKind(values.phone);
        if (kind) errors.phone = say("phone", kind);
      }
      if (!("category" in errors) && !rules.categories.includes(values.category)) {
        errors.category = say("category", "required");
      }
      const priority = "priority" in values ? values.priority : "normal";
      if (!("priority" in errors) && !rules.priorities.includes(priority)) {
        errors.priority = say("priority", "invalid");
      }
      return errors;
    };
  }

  /* Which of our messages a server error (service/forms.py wording) means. */
  function serverMessage(rules, field, message) {
    const words = rules.messages[field];
    if (!words) return `${field}: ${message}`;
    let kind = "invalid";
    if (message === "is required") kind = "required";
    else if (message.startsWith("must be at least")) kind = "short";
    else if (message.startsWith("must be at most")) kind = "long";
    else if (message === "must be text") kind = "text";
    else if (field === "category" && message.startsWith("must be one of")) kind = "required";
    else if (field === "phone" && message.includes("country code")) kind = "country";
    return words[kind] || message;
  }

  // ---------- showing errors next to their fields ----------
  function describedBy(control, id, present) {
    const ids = (control.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean);
    const next = ids.filter((x) => x !== id);
    if (present) next.push(id);
    if (next.length) control.setAttribute("aria-describedby", next.join(" "));
    else control.removeAttribute("aria-describedby");
  }

  function showFieldError(form, field, message) {
    const wrapper = form.querySelector(`[data-field="${field}"]`);
    if (!wrapper) return;
    const box = document.getElementById(`${field}-error`);
    const controls = wrapper.querySelectorAll("input, select, textarea");
    box.textContent = message || "";
    box.hidden = !message;
    wrapper.classList.toggle("has-error", Boolean(message));
    for (const control of controls) {
      if (message) control.setAttribute("aria-invalid", "true");
      else control.removeAttribute("aria-invalid");
    }
    if (wrapper.tagName === "FIELDSET") describedBy(wrapper, box.id, Boolean(message));
    else for (const control of controls) describedBy(control, box.id, Boolean(message));
  }

  function firstControl(form, field) {
    if (field === "priority") {
      return form.querySelector('input[name="priority"]:checked') ||
        form.querySelector('input[name="priority"]');
    }
    return form.elements.namedItem(field);
  }

  function showSummary(form, rules, errors) {
    const summary = document.getElementById("error-summary");
    const fields = [
      ...rules.fields.filter((field) => field in errors),
      ...Object.keys(errors).filter((field) => !rules.fields.includes(field)),
    ];
    summary.hidden = fields.length === 0;
    document.title = (fields.length ? "Error: " : "") + document.title.replace(/^Error: /, "");
    if (!fields.length) return;
    summary.querySelector("h2").textContent =
      fields.length === 1 ? "Please check this field" : "Please check these fields";
    const list = summary.querySelector("ul");
    list.replaceChildren();
    for (const field of fields) {
      const item = document.createElement("li");
      const link = document.createElement("a");
      const control = firstControl(form, field);
      link.href = `#${control ? control.id : ""}`;
      link.textContent = errors[field];
      link.addEventListener("click", (event) => {
        if (!control) return;
        event.preventDefault();
        control.focus();
      });
      item.append(link);
      list.append(item);
    }
  }

  function readForm(form) {
    const raw = {};
    for (const [key, value] of new FormData(form)) raw[key] = value;
    return raw;
  }

  // ---------- the support form ----------
  function setupForm(form, rules) {
    const validate = makeValidator(rules);
    const button = form.querySelector('button[type="submit"]');
    const label = button.querySelector(".button-label");
    const sendingStatus = document.getElementById("sending-status");
    const alertBox = document.getElementById("form-alert");
    const touched = new Set(
      [...form.querySelectorAll("[data-field].has-error")].map((el) => el.dataset.field));
    let sending = false;

    form.noValidate = true; // our messages, not the browser's bubbles

    function check(field) {
      const errors = validate(readForm(form));
      showFieldError(form, field, errors[field]);
    }
    for (const field of rules.fields) {
      const wrapper = form.querySelector(`[data-field="${field}"]`);
      if (!wrapper) continue;
      wrapper.addEventListener("focusout", (event) => {
        // Not when moving to the submit button: an error appearing above it would move it
        // away from under the pointer between press and release, and the click would miss.
        if (wrapper.contains(event.relatedTarget) || event.relatedTarget === button) return;
        if (readForm(form)[field] || touched.has(field)) { touched.add(field); check(field); }
      });
      wrapper.addEventListener("input", () => { if (touched.has(field)) check(field); });
      wrapper.addEventListener("change", () => { if (touched.has(field)) check(field); });
    }

    const message = form.elements.namedItem("message");
    const counter = document.getElementById("message-count");
    const [, max] = rules.limits.message;
    function count() {
      const used = [...message.value].length;
      counter.textContent = `${used} / ${max}`;
      counter.classList.toggle("over", used > max);
    }
    counter.hidden = false;
    message.addEventListener("input", count);
    count();

    function setLoading(on) {
      sending = on;
      button.disabled = on;
      button.classList.toggle("is-loading", on);
      form.setAttribute("aria-busy", String(on));
      label.textContent = on ? "Sending…" : "Send request";
      sendingStatus.textContent = on ? "Sending your request…" : "";
    }

    function fail(text) {
      alertBox.textContent = text;
      alertBox.hidden = false;
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (sending) return;
      alertBox.hidden = true;
      const raw = readForm(form);
      const errors = validate(raw);
      for (const field of rules.fields) {
        showFieldError(form, field, errors[field]);
        touched.add(field);
      }
      showSummary(form, rules, errors);
      const invalid = rules.fields.filter((field) => field in errors);
      if (invalid.length) {
        firstControl(form, invalid[0]).focus();
        return;
      }
      setLoading(true);
      try {
        const response = await fetch(form.dataset.api, {
          method: "POST",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(Object.fromEntries(
            Object.entries(raw).filter(([, value]) => value !== ""))),
          signal: AbortSignal.timeout(20000),
        });
        const body = await response.json().catch(() => ({}));
        if (response.status === 201) { showReceipt(body); return; }
        if (response.status === 400 && body.fields) {
          const fromServer = {};
          for (const [field, text] of Object.entries(body.fields)) {
            fromServer[field] = serverMessage(rules, field, text);
            showFieldError(form, field, fromServer[field]);
          }
          showSummary(form, rules, fromServer);
          document.getElementById("error-summary").focus();
        } else if (response.status === 429) {
          fail("Too many requests just now. Please wait a minute and send again.");
        } else {
          fail("We could not send your request (the server answered " +
            `${response.status}). Please try again in a moment.`);
        }
      } catch (error) {
        fail("We could not reach the server. Check your connection and send again; " +
          "what you typed is still here.");
      } finally {
        setLoading(false);
      }
    });
  }

  function showReceipt(receipt) {
    const sent = document.getElementById("sent");
    const statusUrl = receipt.status_url;
    sent.querySelector('[data-slot="ticket"]').textContent = receipt.ticket_id;
    sent.querySelector('[data-slot="token"]').textContent = receipt.access_token;
    sent.querySelector('[data-slot="status-url"]').value = statusUrl;
    sent.querySelector('[data-slot="status-href"]').href = statusUrl;
    document.getElementById("request").hidden = true;
    sent.hidden = false;
    document.title = "Request received · Tasklane Support";
    const here = `/support/${encodeURIComponent(receipt.ticket_id)}` +
      `?token=${encodeURIComponent(receipt.access_token)}`;
    history.replaceState(null, "", here); // a reload shows this page, never re-sends
    setupCopy(sent);
    document.getElementById("sent-title").focus();
  }

  function setupCopy(root) {
    for (const button of root.querySelectorAll("[data-copy]")) {
      const input = document.getElementById(button.dataset.copy);
      const status = root.querySelector("[data-copy-status]");
      button.hidden = false;
      if (button.dataset.ready) continue;
      button.dataset.ready = "1";
      button.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(input.value);
          status.textContent = "Link copied.";
        } catch (error) {
          input.focus();
          input.select();
          status.textContent = "Link selected: press Ctrl+C (or ⌘C) to copy it.";
        }
      });
    }
    for (const input of root.querySelectorAll("input[readonly]")) {
      input.addEventListener("focus", () => input.select());
    }
  }

  // ---------- the status page ----------
  const namesElement = document.getElementById("status-names");
  const names = namesElement ? JSON.parse(namesElement.textContent) : {};
  const AUTHORS = names.authors || {};
  const STATUSES = names.statuses || {};
  const ACTIVE = names.active || [];
  const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

  function localTimes(root) {
    for (const el of root.querySelectorAll("time[datetime]")) {
      const moment = new Date(el.getAttribute("datetime"));
      if (!Number.isNaN(moment.getTime())) el.textContent = timeFormat.format(moment);
    }
  }

  /* Text nodes and links for http(s) addresses, as web.linkify renders them; never markup. */
  function linkified(text) {
    const nodes = [];
    let last = 0;
    for (const match of text.matchAll(/https?:\/\/[^\s<>"']+/g)) {
      const url = match[0].replace(/[.,;:!?)]+$/, "");
      nodes.push(document.createTextNode(text.slice(last, match.index)));
      const link = document.createElement("a");
      link.href = url;
      link.rel = "noopener noreferrer nofollow";
      link.textContent = url;
      nodes.push(link);
      last = match.index + url.length;
    }
    nodes.push(document.createTextNode(text.slice(last)));
    return nodes;
  }

  function messageItem(m, fresh) {
    const item = document.createElement("li");
    item.className = `msg msg-${m.direction} msg-${m.author}${fresh ? " msg-new" : ""}`;
    const meta = document.createElement("p");
    meta.className = "msg-meta";
    const who = document.createElement("span");
    who.className = "msg-author";
    who.textContent = AUTHORS[m.author] || m.author;
    const when = document.createElement("time");
    when.setAttribute("datetime", m.created_at);
    meta.append(who, " ", when);
    const text = document.createElement("div");
    text.className = "msg-text";
    text.append(...linkified(m.text));
    item.append(meta, text);
    localTimes(item);
    return item;
  }

  /* Poll the ticket: quickly with backoff until a reply arrives, then more slowly (again
     with backoff, restarting at each new message) while a reply can still come, for a person
     may take over; stop after `cap` ms so a forgotten tab does not poll forever. */
  function setupStatus(section) {
    const thread = document.getElementById("thread");
    const waiting = document.getElementById("waiting");
    const badge = document.getElementById("ticket-status");
    const escalated = document.getElementById("escalated-note");
    const pollStatus = document.getElementById("poll-status");
    const announcer = document.getElementById("announcer");
    const updated = document.getElementById("ticket-updated");
    const refresh = document.getElementById("refresh");
    const started = Date.now();
    const cap = 30 * 60 * 1000;
    const waitingPace = { first: 1000, factor: 1.6, max: 15000 };
    const answeredPace = { first: 5000, factor: 1.5, max: 60000 };
    let seen = thread.children.length;
    let status = section.dataset.status;
    let pace = waiting.hidden ? answeredPace : waitingPace;
    let delay = pace.first;
    let timer = null;

    localTimes(document);

    function answered(messages) {
      return messages.length > 0 && messages[messages.length - 1].direction === "outbound";
    }

    /* Returns whether new messages arrived. */
    function render(view) {
      const messages = view.messages;
      const added = messages.slice(seen);
      for (const m of added) thread.append(messageItem(m, true));
      const replies = added.filter((m) => m.direction === "outbound");
      if (replies.length) {
        const from = AUTHORS[replies[replies.length - 1].author] || "our team";
        announcer.textContent = `New reply from ${from}.`;
      }
      seen = Math.max(seen, messages.length);
      status = view.status;
      section.dataset.status = status;
      badge.textContent = STATUSES[status] || status;
      badge.className = `badge badge-${status}`;
      updated.setAttribute("datetime", view.updated_at);
      localTimes(updated.parentElement);
      escalated.hidden = status !== "escalated";
      waiting.hidden = answered(messages) || !ACTIVE.includes(status);
      return added.length > 0;
    }

    function schedule() {
      clearTimeout(timer);
      timer = null;
      if (!ACTIVE.includes(status)) return;
      if (Date.now() - started > cap) {
        pollStatus.textContent =
          "Automatic updates have paused. Use “Check for new replies” to look again.";
        return;
      }
      timer = setTimeout(poll, delay);
    }

    async function poll() {
      try {
        const response = await fetch(section.dataset.api, {
          headers: { Accept: "application/json", "X-Ticket-Token": section.dataset.token },
          cache: "no-store",
          signal: AbortSignal.timeout(15000),
        });
        if (response.status === 404) {
          pollStatus.textContent = "This status link is no longer valid.";
          return;
        }
        if (!response.ok) throw new Error(`status ${response.status}`);
        pollStatus.textContent = "";
        const changed = render(await response.json());
        const next = waiting.hidden ? answeredPace : waitingPace;
        if (changed || next !== pace) { pace = next; delay = pace.first; }
        else delay = Math.min(delay * pace.factor, pace.max);
      } catch (error) {
        pollStatus.textContent = "Could not check for replies just now; trying again shortly.";
        delay = Math.min(delay * pace.factor, pace.max);
      }
      schedule();
    }

    refresh.addEventListener("click", (event) => {
      event.preventDefault();
      clearTimeout(timer);
      delay = pace.first;
      poll();
    });
    schedule();
  }

  // ---------- start ----------
  const rulesElement = document.getElementById("form-rules");
  const rules = rulesElement ? JSON.parse(rulesElement.textContent) : null;
  if (rules) {
    window.fteValidate = makeValidator(rules); // the browser tests compare it with the server
  }
  const form = document.getElementById("support-form");
  if (form && rules) setupForm(form, rules);
  const receipt = document.querySelector("[data-copy]");
  if (receipt) setupCopy(document);
  const ticketView = document.getElementById("ticket-view");
  if (ticketView) setupStatus(ticketView);
})();
