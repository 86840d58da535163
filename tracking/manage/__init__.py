"""What people do: devices, organizations, access and reads, with their permissions."""
