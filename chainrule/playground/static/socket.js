// The WebSocket side of PROTOCOL.md: JSON text frames, request ids, and the animation's flow
// control (a frame is acknowledged only after it was drawn, so frames the page cannot draw are
// dropped by the server instead of queuing up here).

export class Connection {
  constructor(url) {
    this.url = url;
    this.handlers = new Map();
    this.pending = new Map();
    this.nextId = 1;
    this.ws = null;
    this.pendingFrame = null;
    this.frameScheduled = false;
    this.framesDrawn = 0;
    this.framesReceived = 0;
  }

  /** Register fn for messages of one type ("open" and "close" for the connection itself). */
  on(type, fn) {
    this.handlers.set(type, fn);
  }

  emit(type, msg) {
    const fn = this.handlers.get(type);
    if (fn) fn(msg);
  }

  connect() {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => this.emit("open", null));
    ws.addEventListener("close", () => {
      for (const { reject } of this.pending.values()) reject(new Error("connection closed"));
      this.pending.clear();
      this.emit("close", null);
    });
    ws.addEventListener("message", (ev) => this.receive(ev.data));
  }

  get open() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  /** Send a message; returns its id (the server's reply carries it as reply_to). */
  send(msg) {
    const id = this.nextId++;
    this.sendRaw(JSON.stringify({ ...msg, id }));
    return id;
  }

  /** Send raw text (also used by the tests to send malformed messages). */
  sendRaw(text) {
    if (!this.open) throw new Error("not connected to the server");
    this.ws.send(text);
  }

  /** Send and wait for the direct reply (rejects with the server's error message). */
  request(msg) {
    return new Promise((resolve, reject) => {
      const id = this.send(msg);
      this.pending.set(id, { resolve, reject });
    });
  }

  receive(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      this.emit("error", { type: "error", message: "the server sent something that is not JSON", for: null });
      return;
    }
    if (msg.reply_to !== undefined && this.pending.has(msg.reply_to)) {
      const { resolve, reject } = this.pending.get(msg.reply_to);
      this.pending.delete(msg.reply_to);
      if (msg.type === "error") reject(new Error(msg.message));
      else resolve(msg);
    }
    if (msg.type === "frame") {
      this.receiveFrame(msg);
      return;
    }
    this.emit(msg.type, msg);
  }

  // Keep only the newest frame; draw it on the next animation frame, then acknowledge it.
  receiveFrame(frame) {
    this.framesReceived++;
    this.pendingFrame = frame;
    if (this.frameScheduled) return;
    this.frameScheduled = true;
    requestAnimationFrame(() => {
      this.frameScheduled = false;
      const f = this.pendingFrame;
      this.pendingFrame = null;
      if (!f) return;
      this.emit("frame", f);
      this.framesDrawn++;
      if (this.open) this.ws.send(JSON.stringify({ type: "ack", frame: f.id }));
    });
  }
}
