"""Where rendered frames go: a virtual camera, a preview window, a video file, or nowhere."""
