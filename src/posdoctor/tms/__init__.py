"""posdoctor.tms"""
