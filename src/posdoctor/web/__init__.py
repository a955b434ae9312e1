"""posdoctor.web"""
