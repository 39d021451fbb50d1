const crypto = require("crypto");
const CryptoJS = require("crypto-js");

function seal(key, iv, text) {
  // ruleid: picket.javascript.weak-cipher
  const a = crypto.createCipheriv("des-ede3-cbc", key, iv);
  // ruleid: picket.javascript.weak-cipher
  const b = crypto.createCipheriv("rc4", key, null);
  // ruleid: picket.javascript.weak-cipher
  const c = crypto.createCipher("aes-256-cbc", "password");
  // ruleid: picket.javascript.weak-cipher
  const d = CryptoJS.TripleDES.encrypt(text, "passphrase");
  // ok: picket.javascript.weak-cipher
  const e = crypto.createCipheriv("aes-256-gcm", key, iv);
  // ok: picket.javascript.weak-cipher
  const f = CryptoJS.AES.encrypt(text, "passphrase");
  return [a, b, c, d, e, f];
}
