using SecureMesh.Cli.Commands;
using SecureMesh.Node;
using SecureMesh.Node.Control;
using SecureMesh.Storage;

namespace SecureMesh.Cli;

/// <summary>
/// The way to the node's state for one command: through the control API when a node holds the lock on the data
/// directory, else straight on the database. Either way the command sees one <see cref="INodeControl"/> and prints the same.
/// </summary>
internal sealed class NodeAccess : IDisposable
{
    private readonly IDisposable _resource;

    private NodeAccess(INodeControl control, IGroupControl groups, IDisposable resource, bool running)
    {
        Control = control;
        Groups = groups;
        _resource = resource;
        NodeRunning = running;
    }

    public INodeControl Control { get; }

    /// <summary>Peer groups and share audiences, the same way.</summary>
    public IGroupControl Groups { get; }

    /// <summary>True when a running node answers the commands.</summary>
    public bool NodeRunning { get; }

    public static NodeAccess Open(CliContext ctx)
    {
        if (NodeLock.IsHeld(ctx.Home))
        {
            var client = new ControlClient(ctx.Home);
            return new NodeAccess(client, client, client, running: true);
        }
        SecureMeshDatabase db = TrustCommands.OpenDatabase(ctx);
        return new NodeAccess(NodeControl.Offline(ctx.Home, db), NodeControl.Groups(db), db, running: false);
    }

    public void Dispose() => _resource.Dispose();
}
