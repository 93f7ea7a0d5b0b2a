using SecureMesh.Core;
using SecureMesh.Core.Content;

namespace SecureMesh.Fuzz.Targets;

/// <summary>The manifest parser; what decodes must keep its exact bytes, and checking its signature must not throw.</summary>
internal static class ManifestTarget
{
    public static FuzzTarget Target { get; } = new("manifest", "Manifest.Decode and Manifest.Verify", Run, Seeds);

    private static readonly DateTimeOffset Created = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    public static bool Run(ReadOnlySpan<byte> data)
    {
        Manifest manifest;
        try
        {
            manifest = Manifest.Decode(data);
        }
        catch (SecureMeshException e) when (Expected.IsProtocolError(e))
        {
            return false;
        }
        if (!manifest.Encoded.SequenceEqual(data))
        {
            throw Expected.Finding("a decoded manifest keeps different bytes");
        }
        if (manifest.ChunkCount < 0 || manifest.Size < 0 || manifest.Name.Length == 0)
        {
            throw Expected.Finding($"a decoded manifest has out-of-range fields: {manifest.Size} bytes, {manifest.ChunkCount} chunks");
        }
        _ = manifest.ToString();
        return manifest.Verify();
    }

    /// <summary>A valid, signed manifest.</summary>
    public static byte[] SampleManifest() =>
        Manifest.Create(FixedKeys.ResponderIdentity, "holiday.iso", 5_000_000, ChunkLayout.DefaultChunkSize, Id(1), Created).Encode();

    private static ContentId Id(byte start) => ContentId.FromHash(Enumerable.Range(start, 32).Select(i => (byte)i).ToArray());

    private static IReadOnlyList<byte[]> Seeds() =>
    [
        SampleManifest(),
        Manifest.Create(FixedKeys.InitiatorIdentity, "ü", 0, ChunkLayout.MinChunkSize, Id(2), DateTimeOffset.UnixEpoch).Encode(),
        // The largest file a manifest may describe: MaxChunkCount chunks of the largest size (4 TiB).
        Manifest.Create(FixedKeys.InitiatorIdentity, new string('n', Manifest.MaxNameBytes), ChunkLayout.MaxChunkCount * ChunkLayout.MaxChunkSize, ChunkLayout.MaxChunkSize, Id(3), Created).Encode(),
    ];
}
