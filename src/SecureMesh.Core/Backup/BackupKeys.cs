using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;
using SecureMesh.Core.Identity;

namespace SecureMesh.Core.Backup;

/// <summary>
/// The owner's backup keys, all derived from the identity's Ed25519 seed with HKDF-SHA256 (RFC 5869; NSec), so a
/// restore needs nothing but the exported identity key. Salt <see cref="Salt"/>; one 32-byte output per purpose, each
/// with its own info label, so a key for one purpose never serves another: file chunks, the catalog, and the trust-store
/// export. Each key is an XChaCha20-Poly1305 key. Dispose to wipe them.
/// </summary>
public sealed class BackupKeys : IDisposable
{
    /// <summary>The HKDF salt (public, fixed, versioned).</summary>
    public const string Salt = "securemesh backup v1";

    /// <summary>HKDF info for the key that encrypts file chunks.</summary>
    public const string ContentLabel = "securemesh backup v1 content key";

    /// <summary>HKDF info for the key that encrypts the catalog (paths, sizes, content IDs, versions, times).</summary>
    public const string CatalogLabel = "securemesh backup v1 catalog key";

    /// <summary>HKDF info for the key that encrypts the trust-store export (peers, groups, settings).</summary>
    public const string TrustLabel = "securemesh backup v1 trust store key";

    private BackupKeys(Key content, Key catalog, Key trust)
    {
        Content = content;
        Catalog = catalog;
        Trust = trust;
    }

    /// <summary>Encrypts file chunks.</summary>
    internal Key Content { get; }

    /// <summary>Encrypts the catalog.</summary>
    internal Key Catalog { get; }

    /// <summary>Encrypts the trust-store export.</summary>
    internal Key Trust { get; }

    /// <summary>Derives the keys of <paramref name="identity"/>.</summary>
    public static BackupKeys Derive(NodeIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(identity);
        Span<byte> seed = stackalloc byte[NodeIdentity.SeedLength];
        try
        {
            identity.ExportSeed(seed);
            return FromSeed(seed);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(seed);
        }
    }

    /// <summary>Derives the keys from a 32-byte Ed25519 seed.</summary>
    public static BackupKeys FromSeed(ReadOnlySpan<byte> seed)
    {
        if (seed.Length != NodeIdentity.SeedLength)
        {
            throw new ArgumentException("an Ed25519 seed is 32 bytes", nameof(seed));
        }
        Key? content = null;
        Key? catalog = null;
        try
        {
            content = DeriveKey(seed, ContentLabel);
            catalog = DeriveKey(seed, CatalogLabel);
            return new BackupKeys(content, catalog, DeriveKey(seed, TrustLabel));
        }
        catch
        {
            content?.Dispose();
            catalog?.Dispose();
            throw;
        }
    }

    /// <summary>HKDF-SHA256(seed, salt, label) into 32 bytes (test seam: the derivation is documented in SECURITY.md).</summary>
    internal static void DeriveBytes(ReadOnlySpan<byte> seed, string label, Span<byte> output) =>
        KeyDerivationAlgorithm.HkdfSha256.DeriveBytes(seed, Encoding.ASCII.GetBytes(Salt), Encoding.ASCII.GetBytes(label), output);

    private static Key DeriveKey(ReadOnlySpan<byte> seed, string label)
    {
        Span<byte> raw = stackalloc byte[32];
        try
        {
            DeriveBytes(seed, label, raw);
            return Key.Import(BackupCipher.Algorithm, raw, KeyBlobFormat.RawSymmetricKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(raw);
        }
    }

    /// <inheritdoc/>
    public override string ToString() => "BackupKeys";

    /// <inheritdoc/>
    public void Dispose()
    {
        Content.Dispose();
        Catalog.Dispose();
        Trust.Dispose();
    }
}
