const crypto = require("crypto");
const CryptoJS = require("crypto-js");

function seal(key, iv, text) {
  // ruleid: picket.javascript.ecb-mode
  const a = crypto.createCipheriv("aes-128-ecb", key, null);
  // ruleid: picket.javascript.ecb-mode
  const b = CryptoJS.AES.encrypt(text, key, { mode: CryptoJS.mode.ECB });
  // ok: picket.javascript.ecb-mode
  const c = crypto.createCipheriv("aes-256-gcm", key, iv);
  return [a, b, c];
}
