"""Face tracking: the ICT 3DMM, landmark backends, fitting, smoothing and retargeting."""
