"""The payments domain: starting pushes, applying callbacks, recovering, reconciling. No views."""
