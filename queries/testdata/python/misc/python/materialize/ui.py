def say(msg: str) -> None:
    print(msg)
