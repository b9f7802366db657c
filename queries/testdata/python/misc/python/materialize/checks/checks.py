class Check:
    pass
