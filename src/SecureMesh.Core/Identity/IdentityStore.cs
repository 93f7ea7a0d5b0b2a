using System.Security.Cryptography;

namespace SecureMesh.Core.Identity;

/// <summary>
/// The node identity in the data directory: <c>identity.pub</c> (public, readable without a passphrase)
/// and <c>identity.key</c> (owner-only, optionally passphrase-encrypted). Formats: keys/README.md.
/// </summary>
public static class IdentityStore
{
    /// <summary>File name of the public part.</summary>
    public const string PublicKeyFileName = "identity.pub";

    /// <summary>File name of the private key (mode 0600).</summary>
    public const string PrivateKeyFileName = "identity.key";

    private const string TempMarker = ".tmp-";

    /// <summary>Creates the data directory (mode 0700) or tightens it to 0700 if it is ours.</summary>
    public static void EnsureDataDirectory(string home)
    {
        ArgumentException.ThrowIfNullOrEmpty(home);
        var full = FullPath(home);
        try
        {
            if (!Directory.Exists(full))
            {
                if (OperatingSystem.IsWindows())
                {
                    Directory.CreateDirectory(full);
                }
                else
                {
                    Directory.CreateDirectory(full, OwnerOnly.Directories);
                    // CreateDirectory honours the umask; set the mode explicitly.
                    File.SetUnixFileMode(full, OwnerOnly.Directories);
                }
            }
            else if (!OperatingSystem.IsWindows() && UnixFileSystem.IsOwnedByCurrentUser(full)
                     && File.GetUnixFileMode(full) != OwnerOnly.Directories)
            {
                File.SetUnixFileMode(full, OwnerOnly.Directories);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"cannot create data directory '{full}': {Reason(e)}", e);
        }
        if (!IsWritable(full))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"cannot use data directory '{full}': permission denied (not writable)");
        }
    }

    /// <summary>True when an identity key exists in <paramref name="home"/>.</summary>
    public static bool Exists(string home) => File.Exists(KeyPath(home));

    /// <summary>The Peer ID from the public file alone; never needs a passphrase.</summary>
    public static PeerId LoadPeerId(string home)
    {
        var path = PubPath(home);
        if (!File.Exists(path) && File.Exists(KeyPath(home)))
        {
            throw IdentityKeyFile.Corrupt(path, $"the file is missing although {KeyPath(home)} exists; restore it or re-create the identity with --force");
        }
        return IdentityKeyFile.DecodePublic(ReadFile(path), path);
    }

    /// <summary>True when the private key is protected by a passphrase.</summary>
    public static bool IsEncrypted(string home)
    {
        var path = KeyPath(home);
        var contents = ReadFile(path);
        try
        {
            return IdentityKeyFile.IsEncrypted(contents, path);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(contents);
        }
    }

    /// <summary>Loads the identity; <paramref name="passphrase"/> is called only if the key is encrypted.</summary>
    public static NodeIdentity Load(string home, Func<string?> passphrase)
    {
        ArgumentNullException.ThrowIfNull(passphrase);
        var keyPath = KeyPath(home);
        var expected = LoadPeerId(home);
        var contents = ReadFile(keyPath);
        NodeIdentity identity;
        try
        {
            identity = IdentityKeyFile.DecodePrivate(contents, keyPath, passphrase);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(contents);
        }
        if (identity.PeerId != expected)
        {
            identity.Dispose();
            throw new SecureMeshException(SecureMeshErrorKind.Identity,
                $"identity file {keyPath} does not match {PubPath(home)} (Peer ID {expected}); restore the matching pair or re-create the identity with --force");
        }
        return identity;
    }

    /// <summary>Writes the identity atomically (a null or empty passphrase stores it unencrypted); refuses to replace an existing one unless <paramref name="force"/>.</summary>
    public static void Save(string home, NodeIdentity identity, string? passphrase, bool force) =>
        Save(home, identity, passphrase, force, KdfParameters.Default, beforeCommit: null);

    /// <summary>Test seam: chosen KDF cost and a hook that runs after the temporary files are durable, before the renames.</summary>
    internal static void Save(string home, NodeIdentity identity, string? passphrase, bool force, KdfParameters kdf, Action? beforeCommit)
    {
        ArgumentNullException.ThrowIfNull(identity);
        EnsureDataDirectory(home);
        var dir = FullPath(home);
        var keyPath = KeyPath(home);
        var pubPath = PubPath(home);
        if (!force && (File.Exists(keyPath) || File.Exists(pubPath)))
        {
            throw new SecureMeshException(SecureMeshErrorKind.Conflict, $"an identity already exists in {dir}; use --force to replace it");
        }

        var keyTemp = keyPath + TempMarker + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        var pubTemp = pubPath + TempMarker + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        var keyBytes = IdentityKeyFile.EncodePrivate(identity, passphrase, kdf);
        try
        {
            WriteDurable(keyTemp, keyBytes);
            WriteDurable(pubTemp, IdentityKeyFile.EncodePublic(identity.PeerId));
            beforeCommit?.Invoke();
            // The private key goes first: it is the identity, the public file is a copy of its public half.
            File.Move(keyTemp, keyPath, overwrite: true);
            File.Move(pubTemp, pubPath, overwrite: true);
            UnixFileSystem.TryFsyncDirectory(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"cannot write the identity in {dir}: {Reason(e)}", e);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(keyBytes);
            TryDelete(keyTemp);
            TryDelete(pubTemp);
        }
    }

    internal static string KeyPath(string home) => Path.Combine(FullPath(home), PrivateKeyFileName);

    internal static string PubPath(string home) => Path.Combine(FullPath(home), PublicKeyFileName);

    private static string FullPath(string home)
    {
        ArgumentException.ThrowIfNullOrEmpty(home);
        try
        {
            return Path.GetFullPath(home);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, "invalid data directory path", e);
        }
    }

    private static void WriteDurable(string path, ReadOnlySpan<byte> contents)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            Options = FileOptions.None,
        };
        if (!OperatingSystem.IsWindows())
        {
            // The file is 0600 from its creation, before any secret byte is written.
            options.UnixCreateMode = OwnerOnly.Files;
        }
        using var stream = new FileStream(path, options);
        stream.Write(contents);
        stream.Flush(flushToDisk: true);
    }

    private static byte[] ReadFile(string path)
    {
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            if (stream.Length > IdentityKeyFile.MaxFileLength)
            {
                throw IdentityKeyFile.Corrupt(path, "too large to be a key file");
            }
            var buffer = new byte[stream.Length];
            stream.ReadExactly(buffer);
            return buffer;
        }
        catch (FileNotFoundException e)
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no identity: {path} does not exist (run 'securemesh init')", e);
        }
        catch (DirectoryNotFoundException e)
        {
            throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"no identity: {path} does not exist (run 'securemesh init')", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"cannot read {path}: {Reason(e)}", e);
        }
    }

    private static bool IsWritable(string dir)
    {
        var probe = Path.Combine(dir, ".write-probe" + TempMarker + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)));
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A leftover temporary file is harmless: it is never read.
        }
    }

    private static string Reason(Exception e) => e switch
    {
        UnauthorizedAccessException => "permission denied",
        PathTooLongException => "path too long",
        DirectoryNotFoundException => "a parent directory is missing",
        _ => e.Message,
    };
}
