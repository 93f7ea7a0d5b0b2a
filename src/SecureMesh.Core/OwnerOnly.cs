namespace SecureMesh.Core;

/// <summary>The only permissions SecureMesh gives what it creates: the data directory, keys, database, quarantine, socket.</summary>
public static class OwnerOnly
{
    /// <summary>0600: read and write for the owner, nothing for anyone else.</summary>
    public const UnixFileMode Files = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>0700: the owner may list, enter and change it, nobody else.</summary>
    public const UnixFileMode Directories = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
}
