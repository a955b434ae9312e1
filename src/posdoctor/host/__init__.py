"""posdoctor.host"""
