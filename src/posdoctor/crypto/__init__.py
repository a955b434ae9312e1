"""posdoctor.crypto"""
