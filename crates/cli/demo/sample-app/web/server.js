const { exec } = require("child_process");
const http = require("http");

http
  .createServer((req, res) => {
    const url = new URL(req.url, "http://localhost");
    // Runs a shell command built from the query string.
    exec("ping -c 1 " + url.searchParams.get("host"), (err, out) => res.end(out));
  })
  .listen(8080);
