using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Storage;

namespace SecureMesh.Node.Control;

/// <summary>A member of a group as <c>groups list</c> shows it.</summary>
public sealed record GroupMemberInfo(string PeerId, string? Name, string State, string Fingerprint);

/// <summary>A group and its members.</summary>
public sealed record GroupInfo(string Name, IReadOnlyList<GroupMemberInfo> Members, DateTimeOffset Created);

/// <summary>Body of <c>POST /v1/groups</c>.</summary>
public sealed record GroupCreateRequest(string Name);

/// <summary>Body of <c>POST /v1/groups/{name}/members</c> and <c>…/members/remove</c>.</summary>
public sealed record GroupMembersRequest(IReadOnlyList<string> PeerIds);

/// <summary>What adding or removing members did: how many changed.</summary>
public sealed record GroupMembersResult(string Group, int Changed);

/// <summary>Body of <c>PUT /v1/shares/audience</c>: <c>with</c> is <c>all</c>, or group names and Peer IDs separated by commas.</summary>
public sealed record ShareAudienceRequest(string Path, string With);

/// <summary>A share's audience after <c>share set</c>.</summary>
public sealed record ShareAudienceInfo(string Path, string Audience, bool Changed);

/// <summary>Peer groups and share audiences: the same operations in-process and over the control socket.</summary>
public interface IGroupControl
{
    Task<IReadOnlyList<GroupInfo>> ListGroupsAsync(CancellationToken cancellationToken);

    Task<GroupInfo> CreateGroupAsync(string name, CancellationToken cancellationToken);

    Task DeleteGroupAsync(string name, CancellationToken cancellationToken);

    Task<GroupMembersResult> AddGroupMembersAsync(string name, IReadOnlyList<string> peerIds, CancellationToken cancellationToken);

    Task<GroupMembersResult> RemoveGroupMembersAsync(string name, IReadOnlyList<string> peerIds, CancellationToken cancellationToken);

    Task<ShareAudienceInfo> SetShareAudienceAsync(string path, string with, CancellationToken cancellationToken);
}

/// <summary>
/// <see cref="IGroupControl"/> on the database: behind the control socket of a running node (then <c>changed</c> makes
/// the node apply the change to open sessions at once), or straight on the file when no node runs.
/// </summary>
internal sealed class GroupControlService(SecureMeshDatabase db, Action? changed = null) : IGroupControl
{
    public Task<IReadOnlyList<GroupInfo>> ListGroupsAsync(CancellationToken cancellationToken)
    {
        var peers = db.Trust.ListPeers().ToDictionary(p => p.PeerId.Text, StringComparer.Ordinal);
        IReadOnlyList<GroupInfo> groups = [.. db.Groups.List().Select(g => new GroupInfo(g.Name,
            [.. g.Members.Select(m => peers.TryGetValue(m.Text, out var p)
                ? new GroupMemberInfo(m.Text, p.Name, p.State.ToString().ToLowerInvariant(), m.Fingerprint)
                : new GroupMemberInfo(m.Text, null, "unknown", m.Fingerprint))],
            g.Created))];
        return Task.FromResult(groups);
    }

    public async Task<GroupInfo> CreateGroupAsync(string name, CancellationToken cancellationToken)
    {
        var created = db.Groups.Create(name);
        return (await ListGroupsAsync(cancellationToken).ConfigureAwait(false)).First(g => g.Name == created.Name);
    }

    public Task DeleteGroupAsync(string name, CancellationToken cancellationToken)
    {
        db.Groups.Delete(name);
        changed?.Invoke();
        return Task.CompletedTask;
    }

    public Task<GroupMembersResult> AddGroupMembersAsync(string name, IReadOnlyList<string> peerIds, CancellationToken cancellationToken)
    {
        var n = db.Groups.AddMembers(name, ParsePeers(peerIds));
        changed?.Invoke();
        return Task.FromResult(new GroupMembersResult(name.Trim(), n));
    }

    public Task<GroupMembersResult> RemoveGroupMembersAsync(string name, IReadOnlyList<string> peerIds, CancellationToken cancellationToken)
    {
        var n = db.Groups.RemoveMembers(name, ParsePeers(peerIds));
        // Cuts requests in flight for content the removed peers may no longer see, now rather than at the next poll.
        changed?.Invoke();
        return Task.FromResult(new GroupMembersResult(name.Trim(), n));
    }

    public Task<ShareAudienceInfo> SetShareAudienceAsync(string path, string with, CancellationToken cancellationToken)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "a shared path is needed");
        }
        var full = Path.GetFullPath(path);
        var audience = ShareAudience.Parse(with);
        var done = db.Groups.SetAudience(full, audience);
        changed?.Invoke();
        return Task.FromResult(new ShareAudienceInfo(full, audience.ToString(), done));
    }

    internal static List<PeerId> ParsePeers(IReadOnlyList<string>? peerIds)
    {
        if (peerIds is null || peerIds.Count == 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "give at least one Peer ID");
        }
        if (peerIds.Count > 10_000)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, "at most 10,000 Peer IDs at once");
        }
        return [.. peerIds.Select(p => PeerId.Parse(p?.Trim()))];
    }
}

/// <summary>Groups and share audiences on the running node.</summary>
internal static class GroupEndpoints
{
    public static void Map(IEndpointRouteBuilder v1)
    {
        v1.MapGet("/groups", (GroupControlService g, CancellationToken ct) => g.ListGroupsAsync(ct));
        v1.MapPost("/groups", (GroupCreateRequest body, GroupControlService g, CancellationToken ct) => g.CreateGroupAsync(body.Name, ct));
        v1.MapDelete("/groups/{name}", async (string name, GroupControlService g, CancellationToken ct) =>
        {
            await g.DeleteGroupAsync(name, ct);
            return Results.NoContent();
        });
        v1.MapPost("/groups/{name}/members", (string name, GroupMembersRequest body, GroupControlService g, CancellationToken ct) => g.AddGroupMembersAsync(name, body.PeerIds, ct));
        v1.MapPost("/groups/{name}/members/remove", (string name, GroupMembersRequest body, GroupControlService g, CancellationToken ct) => g.RemoveGroupMembersAsync(name, body.PeerIds, ct));
        v1.MapPut("/shares/audience", (ShareAudienceRequest body, GroupControlService g, CancellationToken ct) => g.SetShareAudienceAsync(body.Path, body.With, ct));
    }
}
