using System.Diagnostics;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Quarantine;
using SecureMesh.Storage;

namespace SecureMesh.Node.Tests.Quarantine;

/// <summary>
/// A real ClamAV verdict. The public signature database cannot be downloaded here, so the test makes its own
/// MD5 signature with <c>sigtool</c>. Missing ClamAV fails the test on purpose: CI installs the <c>clamav</c> package.
/// </summary>
public sealed class ClamAvTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Clamscan_holds_a_file_matching_a_signature_and_passes_a_clean_one()
    {
        var clamscan = FindOnPath("clamscan");
        var sigtool = FindOnPath("sigtool");
        Assert.True(clamscan is not null && sigtool is not null,
            "clamscan and sigtool are required for this test and were not found on PATH: install ClamAV (apt-get install -y clamav)");

        var malware = System.Text.Encoding.UTF8.GetBytes($"securemesh quarantine test malware {Guid.NewGuid()}\n");
        var clean = "just an ordinary text file\n"u8.ToArray();
        var sample = _dir.Combine("samples", "SecureMesh.Test.Malware");
        Directory.CreateDirectory(Path.GetDirectoryName(sample)!);
        File.WriteAllBytes(sample, malware);
        var signatures = _dir.Combine("signatures");
        Directory.CreateDirectory(signatures);
        File.WriteAllText(Path.Combine(signatures, "test.hdb"), await RunAsync(sigtool!, "--md5", sample));

        var home = _dir.Combine("home");
        using var db = SecureMeshDatabase.Open(home);
        db.Config.Set(NodeSettings.DownloadDir, _dir.Combine("downloads"));
        db.Config.Set(NodeSettings.Scanner, $"clamscan --no-summary -d '{signatures}' {{}}");
        db.Config.Set(NodeSettings.ScannerTimeout, "30");
        using var identity = NodeIdentity.Generate();
        db.Trust.AddPeer(identity.PeerId, "alice", null, trusted: true);
        var manager = new QuarantineManager(db, home);

        var bad = await DownloadAsync(manager, "b3:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "setup.exe", malware, identity.PeerId);
        Assert.False(bad.Released, "ClamAV should have flagged the file");
        Assert.Equal(QuarantineState.Held, bad.Item.State);
        Assert.StartsWith("scanner 'clamscan' flagged the file: ", bad.Item.Reason, StringComparison.Ordinal);
        Assert.EndsWith("SecureMesh.Test.Malware.UNOFFICIAL FOUND", bad.Item.Reason, StringComparison.Ordinal);
        Assert.True(File.Exists(bad.Item.Path));
        Assert.StartsWith(manager.Folder, bad.Item.Path, StringComparison.Ordinal);

        var good = await DownloadAsync(manager, "b3:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "notes.txt", clean, identity.PeerId);
        Assert.True(good.Released, good.Item.Reason);
        Assert.Equal(clean, File.ReadAllBytes(good.Item.ReleasedPath!));
    }

    private static async Task<QuarantineOutcome> DownloadAsync(QuarantineManager manager, string cid, string name, byte[] data, PeerId publisher)
    {
        var item = manager.BeginDownload(cid, name, data.Length, publisher, [publisher]);
        using (var part = manager.OpenPart(item.Id))
        {
            part.Write(data);
        }
        return await manager.CompleteAsync(item.Id,
            async (path, ct) => (await File.ReadAllBytesAsync(path, ct)).AsSpan().SequenceEqual(data), CancellationToken.None);
    }

    private static string? FindOnPath(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, program))
            .FirstOrDefault(File.Exists);

    private static async Task<string> RunAsync(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(process.ExitCode == 0, $"{program} failed ({process.ExitCode}): {await error}");
        return await output;
    }
}
