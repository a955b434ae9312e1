"""posdoctor.doctor"""
