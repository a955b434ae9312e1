"""posdoctor.sim"""
