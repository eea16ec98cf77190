"""The specialists' pipeline the joint network is compared with (issue 20): a detector, trackers and clip action classifiers trained from scratch on the same data."""
