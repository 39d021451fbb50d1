const cp = require("child_process");
const { exec, execFile } = require("child_process");
const { spawn } = require("node:child_process");

function thumbnail(req, res) {
  const file = req.query.file;
  // ruleid: picket.javascript.command-injection
  exec(`convert ${file} -resize 64x64 thumb.png`, (err) => res.end());
  // ruleid: picket.javascript.command-injection
  cp.execSync("git log --author=" + req.body.author);
  // ruleid: picket.javascript.command-injection
  spawn(`tar xzf ${file}`, { shell: true });
  // ruleid: picket.javascript.command-injection
  cp.execFile("sh", ["-c", "unzip " + file]);
  // ruleid: picket.javascript.command-injection
  cp.spawnSync(req.body.cmd, { shell: "/bin/bash" });
  // ok: picket.javascript.command-injection
  cp.execFile("sh", ["-c", "make clean"]);
  // ok: picket.javascript.command-injection
  execFile("convert", [file, "-resize", "64x64", "thumb.png"]);
  // ok: picket.javascript.command-injection
  spawn("tar", ["xzf", file], { shell: false });
  // ok: picket.javascript.command-injection
  exec("git rev-parse HEAD");
  const pattern = /(\d+)/;
  // ok: picket.javascript.command-injection
  const m = pattern.exec(file);
  return m;
}
