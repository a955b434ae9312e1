"""posdoctor.store"""
