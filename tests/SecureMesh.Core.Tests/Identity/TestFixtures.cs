using System.Text.Json;

namespace SecureMesh.Core.Tests.Identity;

/// <summary>Access to the public, test-only fixtures in keys/fixtures.</summary>
internal static class TestFixtures
{
    private static readonly Lazy<string> Directory = new(FindDirectory);

    public static string Path(string name) => System.IO.Path.Combine(Directory.Value, name);

    public static byte[] Bytes(string name) => File.ReadAllBytes(Path(name));

    public static IReadOnlyList<PeerIdVector> PeerIdVectors { get; } = LoadVectors();

    public static PeerIdVector Vector(string source) => PeerIdVectors.Single(v => v.Source == source);

    private static List<PeerIdVector> LoadVectors()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path("peerid-vectors.json")));
        return
        [
            .. doc.RootElement.EnumerateArray().Select(e => new PeerIdVector(
                e.GetProperty("source").GetString()!,
                e.GetProperty("publicKeyHex").GetString()!,
                e.GetProperty("peerId").GetString()!,
                e.TryGetProperty("seedHex", out var seed) ? seed.GetString() : null)),
        ];
    }

    private static string FindDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = System.IO.Path.Combine(dir.FullName, "keys", "fixtures");
            if (System.IO.Directory.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new InvalidOperationException("keys/fixtures not found above the test output directory");
    }
}

internal sealed record PeerIdVector(string Source, string PublicKeyHex, string PeerId, string? SeedHex)
{
    public override string ToString() => Source;
}

/// <summary>A temporary directory removed on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => System.IO.Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "securemesh-test-" + Guid.NewGuid().ToString("N"));

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
