"""The track record: real-time forecasts at past origins, scored against what happened and baselines.

``chronology`` reads the Fed's episode record shipped in ``data/chronology.csv``; ``scoring`` holds
proper scores, calibration summaries and forecast-comparison tests; ``baselines`` the simple rules a
user would use instead.  Everything here is plain NumPy / pandas on plain data, so the distributed
driver can ship it to workers unchanged.
"""
