const crypto = require("crypto");

function issue(user) {
  // ruleid: picket.javascript.insecure-random
  const resetToken = Math.random().toString(36).slice(2);
  // ruleid: picket.javascript.insecure-random
  user.apiKey = Math.floor(Math.random() * 1e16).toString(16);
  // ruleid: picket.javascript.insecure-random
  const payload = { sessionId: Math.random().toString(36), name: user.name };
  // ok: picket.javascript.insecure-random
  const csrfToken = crypto.randomBytes(32).toString("hex");
  // ok: picket.javascript.insecure-random
  const jitter = Math.random() * 100;
  return [resetToken, payload, csrfToken, jitter];
}

// ruleid: picket.javascript.insecure-random
function generatePassword(len) {
  let out = "";
  for (let i = 0; i < len; i++) out += String.fromCharCode(97 + Math.floor(Math.random() * 26));
  return out;
}

// ok: picket.javascript.insecure-random
function pickColor() {
  return ["red", "green"][Math.floor(Math.random() * 2)];
}
