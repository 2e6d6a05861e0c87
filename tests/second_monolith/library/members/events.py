"""What the members context announces: nothing yet."""
