PARAMETERS = {"a": "b"}
