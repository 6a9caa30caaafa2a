# Claude Code: pick one line and run it in your project (add `--scope user` for every project).
# Published on PyPI:
claude mcp add finout -e FINOUT_CLIENT_ID=your-client-id -e FINOUT_SECRET_KEY=your-secret-key -- uvx finout-mcp
# Today, from a checkout or a wheel (no credentials: the built-in demo account):
claude mcp add finout-demo -- uvx --from /ABSOLUTE/PATH/TO/finout-mcp finout-mcp --demo
# A virtualenv install, by absolute path:
claude mcp add finout-venv -e FINOUT_CLIENT_ID=your-client-id -e FINOUT_SECRET_KEY=your-secret-key -- /ABSOLUTE/PATH/TO/finout-mcp/.venv/bin/finout-mcp --read-only
# A server you run over HTTP:
claude mcp add --transport http finout-http http://127.0.0.1:8000/mcp --header "Authorization: Bearer your-finout-mcp-auth-token"
