"""posdoctor.terminal"""
