"""What the camera sees: frames in (camera, replay), faces found (detector, BlazeFace), emotion
probabilities out (preprocess, classifier); analyzer runs detect + classify on one frame."""
