using System.Text.Json;
using System.Text.Json.Serialization;

namespace SecureMesh.Core.Backup;

/// <summary>
/// The owner's catalog: what is backed up, every kept version of every file with its sealed chunks, and the sealed
/// trust-store export. Sealed with the catalog key and stored at each holder as the owner's one mutable "root";
/// <see cref="Sequence"/> grows with every upload, so a holder that hands back an older root is caught by an owner that
/// remembers, and a restore takes the newest root among the holders it asks.
/// </summary>
public sealed class BackupCatalog
{
    /// <summary>The format written.</summary>
    public const int CurrentFormat = 1;

    /// <summary>Largest sealed catalog accepted (about 20,000 files with a few versions each).</summary>
    public const int MaxSealedSize = 8 << 20;

    /// <summary>The format.</summary>
    public int Format { get; set; } = CurrentFormat;

    /// <summary>Grows by one with every catalog written.</summary>
    public long Sequence { get; set; }

    /// <summary>When this catalog was written.</summary>
    public DateTimeOffset Written { get; set; }

    /// <summary>The backed-up paths.</summary>
    public List<CatalogSet> Sets { get; set; } = [];

    /// <summary>Every file with its kept versions.</summary>
    public List<CatalogFile> Files { get; set; } = [];

    /// <summary>The blob holding the sealed trust-store export (hex blob ID), if any.</summary>
    public string? TrustBlob { get; set; }

    /// <summary>Seals the catalog with the catalog key.</summary>
    public byte[] Seal(BackupKeys keys) =>
        BackupCipher.Seal(keys, BlobKind.Catalog, JsonSerializer.SerializeToUtf8Bytes(this, BackupJsonContext.Default.BackupCatalog));

    /// <summary>Opens a sealed catalog; a Protocol <see cref="SecureMeshException"/> when it does not decrypt or parse.</summary>
    public static BackupCatalog Open(BackupKeys keys, ReadOnlySpan<byte> sealedCatalog)
    {
        if (sealedCatalog.Length > MaxSealedSize)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "a backup catalog larger than the cap");
        }
        var json = BackupCipher.Open(keys, BlobKind.Catalog, sealedCatalog);
        try
        {
            var catalog = JsonSerializer.Deserialize(json, BackupJsonContext.Default.BackupCatalog)
                ?? throw new SecureMeshException(SecureMeshErrorKind.Protocol, "an empty backup catalog");
            if (catalog.Format != CurrentFormat)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Protocol, $"a backup catalog of format {catalog.Format}, this SecureMesh reads {CurrentFormat}");
            }
            return catalog;
        }
        catch (JsonException e)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "a backup catalog that does not parse", e);
        }
    }
}

/// <summary>One backed-up path and how it is kept.</summary>
public sealed class CatalogSet
{
    /// <summary>The absolute path backed up (a folder or a file).</summary>
    public string Path { get; set; } = "";

    /// <summary>The version policy: <c>staggered</c>, a count, or <c>forever</c>.</summary>
    public string Keep { get; set; } = "staggered";

    /// <summary>Holders that must have everything.</summary>
    public int Copies { get; set; }

    /// <summary>The holders' Peer IDs.</summary>
    public List<string> Holders { get; set; } = [];
}

/// <summary>One file of a backed-up path.</summary>
public sealed class CatalogFile
{
    /// <summary>The set's path.</summary>
    public string Set { get; set; } = "";

    /// <summary>The path relative to the set, '/'-separated ("" when the set is the file itself).</summary>
    public string Path { get; set; } = "";

    /// <summary>Kept versions, oldest first.</summary>
    public List<CatalogVersion> Versions { get; set; } = [];
}

/// <summary>One version of a file.</summary>
public sealed class CatalogVersion
{
    /// <summary>When this version was recorded.</summary>
    public DateTimeOffset Time { get; set; }

    /// <summary>The file's size.</summary>
    public long Size { get; set; }

    /// <summary>The file's modification time (ns since the epoch).</summary>
    public long MtimeNs { get; set; }

    /// <summary>The file's content ID (<c>b3:…</c>), which a restore verifies.</summary>
    public string ContentId { get; set; } = "";

    /// <summary>True: the file was deleted at <see cref="Time"/>.</summary>
    public bool Deleted { get; set; }

    /// <summary>The sealed chunks in order (hex blob IDs).</summary>
    public List<string> Blobs { get; set; } = [];
}

/// <summary>The trust store as backed up: peers, groups and settings (never the audit log).</summary>
public sealed class TrustExport
{
    /// <summary>Largest sealed export accepted.</summary>
    public const int MaxSealedSize = 4 << 20;

    /// <summary>Trusted and blocked peers.</summary>
    public List<TrustExportPeer> Peers { get; set; } = [];

    /// <summary>Groups and their members.</summary>
    public List<TrustExportGroup> Groups { get; set; } = [];

    /// <summary>Settings.</summary>
    public Dictionary<string, string> Settings { get; set; } = [];

    /// <summary>Seals the export with the trust-store key.</summary>
    public byte[] Seal(BackupKeys keys) =>
        BackupCipher.Seal(keys, BlobKind.Trust, JsonSerializer.SerializeToUtf8Bytes(this, BackupJsonContext.Default.TrustExport));

    /// <summary>A hash of the export's content (to tell whether it changed since the last one was sealed).</summary>
    public string PlaintextHash() =>
        Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(this, BackupJsonContext.Default.TrustExport)));

    /// <summary>Opens a sealed export; a Protocol <see cref="SecureMeshException"/> when it does not decrypt or parse.</summary>
    public static TrustExport Open(BackupKeys keys, ReadOnlySpan<byte> sealedExport)
    {
        if (sealedExport.Length > MaxSealedSize)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "a trust-store export larger than the cap");
        }
        var json = BackupCipher.Open(keys, BlobKind.Trust, sealedExport);
        try
        {
            return JsonSerializer.Deserialize(json, BackupJsonContext.Default.TrustExport)
                ?? throw new SecureMeshException(SecureMeshErrorKind.Protocol, "an empty trust-store export");
        }
        catch (JsonException e)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Protocol, "a trust-store export that does not parse", e);
        }
    }
}

/// <summary>A peer in the trust-store export.</summary>
public sealed class TrustExportPeer
{
    /// <summary>The Peer ID.</summary>
    public string PeerId { get; set; } = "";

    /// <summary>The local name.</summary>
    public string? Name { get; set; }

    /// <summary><c>trusted</c> or <c>blocked</c>.</summary>
    public string State { get; set; } = "trusted";

    /// <summary>The addresses the user gave.</summary>
    public List<string> Addresses { get; set; } = [];

    /// <summary>Why it is blocked.</summary>
    public string? Reason { get; set; }
}

/// <summary>A group in the trust-store export.</summary>
public sealed class TrustExportGroup
{
    /// <summary>The name.</summary>
    public string Name { get; set; } = "";

    /// <summary>Members' Peer IDs.</summary>
    public List<string> Members { get; set; } = [];
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, MaxDepth = 16)]
[JsonSerializable(typeof(BackupCatalog))]
[JsonSerializable(typeof(TrustExport))]
internal sealed partial class BackupJsonContext : JsonSerializerContext;
