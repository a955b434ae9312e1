"""posdoctor.iso8583"""
