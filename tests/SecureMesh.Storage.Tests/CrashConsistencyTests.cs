using System.Diagnostics;
using System.Globalization;

namespace SecureMesh.Storage.Tests;

public sealed class CrashConsistencyTests
{
    [Fact]
    public async Task Killing_a_writer_mid_batch_leaves_a_consistent_database()
    {
        using var t = new TestDatabase();
        t.Db.Dispose();
        var random = new Random(4242);
        long lastCommitted = 0;
        for (var round = 0; round < 3; round++)
        {
            var committed = await RunWriterAndKill(t.Directory, killAfter: random.Next(20, 60), extraDelayMs: random.Next(0, 15));
            lastCommitted += committed;

            using var db = SecureMeshDatabase.Open(t.Directory, t.Time);
            Assert.Equal("ok", db.IntegrityCheck());
            var verification = db.Audit.Verify();
            Assert.True(verification.Ok, $"round {round}: seq {verification.BrokenSeq}: {verification.Reason}");
            // Every change came with its audit entry, and everything reported as committed survived.
            Assert.Equal(0, Query(t, "SELECT count(*) FROM peers p WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.event = 'peer.added' AND a.peer_id = p.peer_id)"));
            Assert.Equal(0, Query(t, "SELECT count(*) FROM audit_log a WHERE a.event = 'peer.added' AND NOT EXISTS (SELECT 1 FROM peers p WHERE p.peer_id = a.peer_id)"));
            Assert.Equal(0, Query(t, "SELECT count(*) FROM peers p WHERE p.state = 'blocked' AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.event = 'peer.blocked' AND a.peer_id = p.peer_id)"));
            Assert.Equal(0, Query(t, "SELECT count(*) FROM peers p WHERE NOT EXISTS (SELECT 1 FROM peer_addresses a WHERE a.peer_id = p.peer_id)"));
            Assert.True(db.Trust.ListPeers().Count >= lastCommitted, $"round {round}: {lastCommitted} reported committed, {db.Trust.ListPeers().Count} found");
        }
    }

    private static long Query(TestDatabase t, string sql)
    {
        using var connection = t.Raw();
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (long)command.ExecuteScalar()!;
    }

    private static async Task<long> RunWriterAndKill(string dataDirectory, int killAfter, int extraDelayMs)
    {
        var writer = Path.Combine(AppContext.BaseDirectory, "SecureMesh.Storage.CrashWriter.dll");
        Assert.True(File.Exists(writer), $"crash writer not built next to the tests: {writer}");
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (string.IsNullOrEmpty(host) || !File.Exists(host))
        {
            host = Environment.ProcessPath is { } p && Path.GetFileNameWithoutExtension(p) == "dotnet" ? p : "dotnet";
        }
        var start = new ProcessStartInfo(host)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(writer);
        start.ArgumentList.Add(dataDirectory);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        long committed = 0;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            while (committed < killAfter)
            {
                var line = await process.StandardOutput.ReadLineAsync(timeout.Token)
                    ?? throw new InvalidOperationException($"crash writer exited early ({process.ExitCode}): {await stderr}");
                committed = long.Parse(line.AsSpan("committed ".Length), CultureInfo.InvariantCulture);
            }
            // Land the kill at varying points inside the following transactions.
            await Task.Delay(extraDelayMs);
        }
        finally
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
        return committed;
    }
}
