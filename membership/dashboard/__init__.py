"""The staff dashboard: pages over the same modules as the API and the CLI.

- `charts`    server-rendered SVG charts with their text alternatives (pure)
- `overview`  the Overview page's view model (pure) and the reads behind it
"""
