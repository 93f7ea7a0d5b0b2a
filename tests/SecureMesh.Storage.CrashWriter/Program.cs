using System.Globalization;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

// Usage: SecureMesh.Storage.CrashWriter DATA_DIR
// Writes transactions in a loop and prints "committed N" after each one; the test kills it at some point.
if (args.Length != 1)
{
    await Console.Error.WriteLineAsync("usage: SecureMesh.Storage.CrashWriter DATA_DIR");
    return 2;
}

using var database = SecureMeshDatabase.Open(args[0]);
var stdout = Console.Out;
for (var i = 1; ; i++)
{
    using (var identity = NodeIdentity.Generate())
    {
        var n = i.ToString(CultureInfo.InvariantCulture);
        database.Trust.AddPeer(identity.PeerId, "peer" + n, [$"192.0.2.{i % 250 + 1}:{4000 + i % 1000}"], trusted: i % 2 == 0);
        database.Audit.Append("crash.tick", identity.PeerId, "i=" + n);
        if (i % 5 == 0)
        {
            database.Trust.Block(identity.PeerId, "reason " + n);
        }
    }
    await stdout.WriteLineAsync("committed " + i.ToString(CultureInfo.InvariantCulture));
    await stdout.FlushAsync();
}
