using System.Diagnostics;
using System.Globalization;
using System.Net;
using SecureMesh.Core;
using SecureMesh.Core.Content;
using SecureMesh.Core.Identity;
using SecureMesh.Core.Wire;
using SecureMesh.Node;
using SecureMesh.Storage;

namespace SecureMesh.Benchmarks;

/// <summary>
/// <c>hostile-manifest SIZE CHUNK_SIZE</c> (issue 14, finding 4): the peak resident memory of a real downloader
/// (<c>securemesh get</c>, its own process) fetching from one trusted peer that lies: it signs a manifest of SIZE bytes
/// in CHUNK_SIZE chunks for made-up content, says it has every chunk, and answers every chunk request with zeros under
/// a made-up proof. The liar runs in this process; the downloader's VmHWM (peak RSS) is read from /proc every 20 ms
/// until it exits. Sizes take k/m/g/t suffixes (powers of 1024).
/// </summary>
internal static class HostileManifest
{
    public static async Task<int> RunAsync(string sizeText, string chunkText)
    {
        var size = ParseSize(sizeText);
        var chunkSize = (int)ParseSize(chunkText);
        var root = Directory.CreateTempSubdirectory("securemesh-hostile-manifest-").FullName;
        try
        {
            var downloaderHome = Path.Combine(root, "downloader");
            var liarHome = Path.Combine(root, "liar");
            IdentityStore.EnsureDataDirectory(downloaderHome);
            Directory.CreateDirectory(liarHome);
            using var downloader = NodeIdentity.Generate();
            IdentityStore.Save(downloaderHome, downloader, passphrase: null, force: false);
            using var liar = NodeIdentity.Generate();
            var id = ContentId.FromHash(Enumerable.Range(1, 32).Select(i => (byte)i).ToArray());
            var manifest = Manifest.Create(liar, "hostile.bin", size, chunkSize, id, DateTimeOffset.UtcNow).Encode();
            var chunks = ChunkLayout.ChunkCount(size, chunkSize);
            long chunkRequests = 0;

            using var liarDb = SecureMeshDatabase.Open(liarHome);
            liarDb.Trust.AddPeer(downloader.PeerId, trusted: true);
            await using var node = MeshNode.Start(liar, liarDb, new NodeOptions
            {
                Home = liarHome,
                Listen = new IPEndPoint(IPAddress.Loopback, 0),
                SessionHandler = async (session, ct) =>
                {
                    var connection = session.Messages!;
                    await connection.SendAsync(WireCodec.Encode(new Hello(0, WireLimits.ProtocolVersion, [], WireLimits.DefaultMaxMessageSize)), ct);
                    var zeros = new byte[chunkSize];
                    var proof = new MerkleProof(new byte[32 * 2]);
                    while (true)
                    {
                        using var received = await connection.ReceiveAsync(ct) ?? throw new SecureMeshException(SecureMeshErrorKind.Network, "closed");
                        WireMessage? reply = WireCodec.Decode(received.Memory.ToArray()) switch
                        {
                            ManifestRequest m => new ManifestResponse(m.RequestId, manifest),
                            HaveRequest h => HaveResponse.ForAll(h.RequestId, Math.Min(chunks, WireLimits.MaxHaveChunks)),
                            ChunkRequest c => Lie(c),
                            Hello => null,
                            var other => new ErrorMessage(other.RequestId, WireErrorCode.NotFound, "no"),
                        };
                        if (reply is not null)
                        {
                            await connection.SendAsync(WireCodec.Encode(reply), ct);
                        }
                    }

                    ChunkResponse Lie(ChunkRequest c)
                    {
                        Interlocked.Increment(ref chunkRequests);
                        return new ChunkResponse(c.RequestId, c.Index, zeros.AsMemory(0, ChunkLayout.ChunkLength(size, chunkSize, c.Index) is var n and >= 0 ? n : 0), proof);
                    }
                },
            });
            using (var db = SecureMeshDatabase.Open(downloaderHome))
            {
                db.Trust.AddPeer(liar.PeerId, "liar", [$"127.0.0.1:{node.LocalEndPoint.Port}"], trusted: true);
                db.Config.Set(NodeSettings.DownloadDir, Path.Combine(root, "released"));
                db.Config.Set(NodeSettings.Discovery, "off");
            }

            var dll = Path.Combine(AppContext.BaseDirectory, "securemesh.dll");
            var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in new[] { dll, "--home", downloaderHome, "get", id.Text })
            {
                start.ArgumentList.Add(a);
            }
            var clock = Stopwatch.StartNew();
            using var process = Process.Start(start)!;
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEndAsync();
            long peakKb = 0;
            while (!process.HasExited)
            {
                peakKb = Math.Max(peakKb, Status(process.Id, "VmHWM:"));
                await Task.Delay(20);
            }
            await process.WaitForExitAsync();
            var largest = LargestFile(downloaderHome);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"manifest: {size} bytes in {chunks} chunks of {chunkSize} bytes; downloader exit {process.ExitCode} after {clock.Elapsed.TotalSeconds:0.0} s; " +
                $"peak RSS (VmHWM) {peakKb / 1024.0:0.0} MB; liar answered {Interlocked.Read(ref chunkRequests)} chunk requests; " +
                $"largest file left in the downloader's home: {largest.Bytes} bytes ({largest.Path})"));
            Console.WriteLine("downloader said: " + string.Join(" | ", (await stderr + await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(3)));
            return 0;
        }
        finally
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static (long Bytes, string Path) LargestFile(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Select(f => (new FileInfo(f).Length, f)).DefaultIfEmpty((0, "-")).MaxBy(f => f.Item1);

    private static long Status(int pid, string key)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith(key, StringComparison.Ordinal))
                {
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
            // Exited meanwhile.
        }
        return 0;
    }

    /// <summary>The node's size syntax (<see cref="SettingDefinition.ParseSize"/>: 512k, 64MiB, 1g, 2t).</summary>
    private static long ParseSize(string text) =>
        SettingDefinition.ParseSize(text) is var size and >= 0 ? size : throw new FormatException($"not a size: '{text}' (e.g. 1t or 64m)");
}
