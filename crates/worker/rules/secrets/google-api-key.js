// Fake values generated for Picket's rule tests; none of them is a real credential.
// ruleid: picket.secrets.google-api-key
const MAPS_KEY = "AIzaasIHrQ8hDszFd2sgxgMc9Qh-RJuxOVsfg6W";
// ruleid: picket.secrets.google-api-key
fetch(`https://www.googleapis.com/youtube/v3/search?key=AIzaaLMJVrDvPGVCm07y4SCjVqy2F-BaEmI8OpD&q=x`);
// ok: picket.secrets.google-api-key
const fromEnv = process.env.GOOGLE_API_KEY;
// ok: picket.secrets.google-api-key
const placeholder = "AIzaXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";
