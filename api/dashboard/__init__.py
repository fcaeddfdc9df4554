"""The dashboard's static files (index.html, style.css and the JavaScript modules), served by
`api.routes.dashboard`. Hand-written, with no third-party code and nothing fetched from
elsewhere, so the page works on a machine without internet."""
