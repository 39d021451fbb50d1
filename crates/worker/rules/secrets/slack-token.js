// Fake values generated for Picket's rule tests; none of them is a real credential.
const { WebClient } = require("@slack/web-api");

// ruleid: picket.secrets.slack-token
const bot = new WebClient("xoxb-464798554400-7218390838434-rtUjZDYQYW8X3VsRlE93mXQW");
// ruleid: picket.secrets.slack-token
const user = new WebClient("xoxp-319672570047-760953512952-7624108166707-380cc4a4dbadcf532ba8dd5bde326dd1");
// ok: picket.secrets.slack-token
const fromEnv = new WebClient(process.env.SLACK_BOT_TOKEN);
// ok: picket.secrets.slack-token
const placeholder = "xoxb-your-token-here";
// ok: picket.secrets.slack-token
const masked = "xoxb-000000000000-0000000000000-xxxxxxxxxxxxxxxxxxxxxxxx";
