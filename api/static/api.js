// The dashboard's one way to the server: POST /graphql with the API token as a Bearer header.
// The token is kept in sessionStorage (this tab only); no cookie is ever used.

const TOKEN_KEY = "dstrack.apiToken";

export const storedToken = {
  get: () => sessionStorage.getItem(TOKEN_KEY),
  set: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** The server refused the token (HTTP 401): wrong, revoked, or of no user. */
export class Unauthorized extends Error {}

/** The server answered with GraphQL errors (a limit, a bad argument, an unknown field). */
export class GraphQLFailure extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join(" "));
    this.errors = errors;
  }
}

export async function graphql(query, variables = {}, token = storedToken.get()) {
  let response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      credentials: "omit",
      cache: "no-store",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        Authorization: `Bearer ${token || ""}`,
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new Error("The dstrack server could not be reached. Check the connection and try again.");
  }
  if (response.status === 401) throw new Unauthorized("The API token was not accepted.");
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`The dstrack server answered with an error (HTTP ${response.status}).`);
  }
  if (body.errors && body.errors.length) throw new GraphQLFailure(body.errors);
  return body.data;
}
