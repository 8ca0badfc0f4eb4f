from hush.cli import main

main()
