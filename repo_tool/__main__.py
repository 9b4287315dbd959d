from repo_tool.cli import main

main()
