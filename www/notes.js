// notes.html: list, add, edit, delete and live search against /notes.
// No framework, no build step. User text only ever goes into the page
// through textContent, never as HTML.
"use strict";

const API = "/notes";
const PAGE = 20;

const $ = (sel) => document.querySelector(sel);
const list = $("#notes");
const statusLine = $("#status");
const moreButton = $("#more");
const emptyLine = $("#empty");
const searchBox = $("#search");
const addForm = $("#add");
const addText = $("#add-text");

let cursor = null;        // next_cursor of the last page, or null
let query = "";           // the search shown, "" for the list
let generation = 0;       // bumps on every reload: late answers are dropped

function say(text, isError) {
  statusLine.textContent = text || "";
  statusLine.classList.toggle("error", !!isError);
}

// fetch + JSON, throwing an Error with the server's {"error"} message.
async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new Error("cannot reach the server");
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    // not JSON: fall through with the status
  }
  if (!res.ok) {
    const why = data && data.error ? data.error : res.status + " " + res.statusText;
    throw new Error(why);
  }
  return data;
}

const timeFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: "medium", timeStyle: "short",
});

function when(note) {
  const created = new Date(note.created_at);
  let text = timeFormat.format(created);
  if (note.updated_at !== note.created_at) {
    text += " · edited " + timeFormat.format(new Date(note.updated_at));
  }
  return text;
}

// Puts text into el, wrapping the words of the search in <mark>.
function fillText(el, text) {
  el.textContent = "";
  const words = query.split(/\s+/).filter(Boolean)
    .map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  if (!words.length) {
    el.textContent = text;
    return;
  }
  const re = new RegExp("(" + words.join("|") + ")", "gi");
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) el.append(text.slice(last, m.index));
    const mark = document.createElement("mark");
    mark.textContent = m[0];
    el.append(mark);
    last = m.index + m[0].length;
  }
  if (last < text.length) el.append(text.slice(last));
}

function render(note) {
  const li = $("#note-template").content.firstElementChild.cloneNode(true);
  li.dataset.id = note.id;
  show(li, note);
  return li;
}

// (Re)fills a note's item in its reading state.
function show(li, note) {
  li.note = note;
  const fresh = $("#note-template").content.firstElementChild.cloneNode(true);
  li.replaceChildren(...fresh.childNodes);
  fillText(li.querySelector(".text"), note.text);
  const time = li.querySelector(".when");
  time.dateTime = note.updated_at;
  time.textContent = when(note);
  li.querySelector(".edit").addEventListener("click", () => edit(li));
  li.querySelector(".delete").addEventListener("click", (ev) => remove(li, ev.currentTarget));
}

function edit(li) {
  const form = $("#edit-template").content.firstElementChild.cloneNode(true);
  const area = form.querySelector("textarea");
  area.value = li.note.text;
  form.querySelector(".cancel").addEventListener("click", () => show(li, li.note));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = area.value;
    if (!text.trim()) {
      say("A note cannot be empty.", true);
      return;
    }
    li.classList.add("busy");
    form.querySelector(".save").disabled = true;
    try {
      const note = await api("PUT", API + "/" + li.note.id, { text });
      show(li, note);
      say("Saved.");
    } catch (e) {
      say("Could not save: " + e.message, true);
      form.querySelector(".save").disabled = false;
    } finally {
      li.classList.remove("busy");
    }
  });
  area.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) form.requestSubmit();
    if (ev.key === "Escape") show(li, li.note);
  });
  li.replaceChildren(form);
  area.focus();
}

// Deleting takes two clicks: the first arms the button for 4 seconds.
async function remove(li, button) {
  if (!button.classList.contains("confirm")) {
    button.classList.add("confirm");
    button.textContent = "Really delete?";
    setTimeout(() => {
      if (button.isConnected) {
        button.classList.remove("confirm");
        button.textContent = "Delete";
      }
    }, 4000);
    return;
  }
  li.classList.add("busy");
  try {
    await api("DELETE", API + "/" + li.note.id);
    li.remove();
    say("Deleted.");
    updateEmpty();
  } catch (e) {
    li.classList.remove("busy");
    say("Could not delete: " + e.message, true);
  }
}

function updateEmpty() {
  const none = list.children.length === 0;
  emptyLine.hidden = !none;
  emptyLine.textContent = query ? "No notes match “" + query + "”." :
    "No notes yet. Write the first one above.";
}

// Loads the first page of the list or of the search, replacing what is shown.
async function reload() {
  const mine = ++generation;
  const path = query
    ? API + "/search?q=" + encodeURIComponent(query) + "&limit=100"
    : API + "?limit=" + PAGE;
  try {
    const data = await api("GET", path);
    if (mine !== generation) return;
    list.replaceChildren(...data.notes.map(render));
    cursor = query ? null : data.next_cursor;
    moreButton.hidden = !cursor;
    updateEmpty();
    say(query ? data.notes.length + (data.notes.length === 1 ? " match" : " matches") : "");
  } catch (e) {
    if (mine === generation) say("Could not load notes: " + e.message, true);
  }
}

async function loadMore() {
  if (!cursor) return;
  moreButton.disabled = true;
  const mine = generation;
  try {
    const data = await api("GET", API + "?limit=" + PAGE + "&cursor=" + encodeURIComponent(cursor));
    if (mine !== generation) return;
    list.append(...data.notes.map(render));
    cursor = data.next_cursor;
    moreButton.hidden = !cursor;
  } catch (e) {
    say("Could not load more: " + e.message, true);
  } finally {
    moreButton.disabled = false;
  }
}

addForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const text = addText.value;
  if (!text.trim()) {
    say("Write something first.", true);
    return;
  }
  const button = $("#add-button");
  button.disabled = true;
  try {
    const note = await api("POST", API, { text });
    addText.value = "";
    if (query) {
      searchBox.value = "";
      query = "";
      await reload();
    } else if (!findNote(note.id)) { // its live event may have come first
      list.prepend(render(note));
      updateEmpty();
    }
    say("Added.");
  } catch (e) {
    say("Could not add: " + e.message, true);
  } finally {
    button.disabled = false;
    addText.focus();
  }
});

addText.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) addForm.requestSubmit();
});

// Live search: waits for a pause in typing, then asks the server.
let searchTimer = 0;
searchBox.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => {
    const q = searchBox.value.trim();
    if (q === query) return;
    query = q;
    reload();
  }, 200);
});

moreButton.addEventListener("click", loadMore);
reload();

// Live updates: /notes/events sends a "note" event ({op, id}) whenever any
// client adds, edits or deletes a note, on any worker. Changes are applied
// one by one (a reload would drop a note being edited here); a "reset"
// (the server could not resume after a reconnect) reloads the list.
// EventSource reconnects by itself and sends the last id it saw.
function findNote(id) {
  return list.querySelector('li[data-id="' + id + '"]');
}

async function applyChange(change) {
  const li = findNote(change.id);
  if (change.op === "deleted") {
    if (li) li.remove();
    updateEmpty();
    return;
  }
  if (query) return; // a search shows its own results: leave them
  if (li && li.querySelector(".editor")) return; // being edited here
  let note;
  try {
    note = await api("GET", API + "/" + change.id);
  } catch (e) {
    return; // deleted since: its own event follows
  }
  const now = findNote(change.id);
  if (now) {
    if (!now.querySelector(".editor")) show(now, note);
  } else if (change.op === "created") {
    list.prepend(render(note));
    updateEmpty();
  }
}

const live = new EventSource(API + "/events");
live.addEventListener("note", (ev) => applyChange(JSON.parse(ev.data)));
live.addEventListener("reset", () => reload());
live.addEventListener("open", () => { document.body.dataset.live = "1"; });
live.addEventListener("error", () => { delete document.body.dataset.live; });
